"""user=: Django model permissions per node, checked before any node runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied

from django_dataflow import LocalRuntime, PermissionDenied
from django_dataflow.models import WorkflowRun
from django_dataflow.runtime.permissions import required_permissions
from shop.models import Customer, Product, StockLevel
from tests.conftest import build, db_state

pytestmark = pytest.mark.django_db

LAMP = {"name": "Lamp", "price": "19.99", "sku": "L-1"}


def make_user(*codenames: str, username: str = "clerk", **extra: Any) -> User:
    """A user holding the given shop/auth permissions (fetched fresh, so no stale perm cache)."""
    user = User.objects.create_user(username, f"{username}@example.com", **extra)  # no hashing
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)


def customer_then_product() -> Any:
    return build(
        [
            ("CustomerCreateNode", "customer", {"name": "Ada", "email": "ada@x.io"}),
            ("ProductCreateNode", "product", LAMP),
            ("ProductListNode", "list", {}),
        ]
    )


def test_user_without_permissions_is_denied_before_anything_runs() -> None:
    user = make_user()
    before = db_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(customer_then_product(), user=user)
    error = info.value
    assert "node 'customer' (CustomerCreateNode) needs permission 'shop.add_customer'" in str(error)
    assert error.node_id == "customer"
    assert error.permission == "shop.add_customer"
    assert isinstance(error, DjangoPermissionDenied)  # Django views turn it into a 403
    assert db_state() == before


def test_a_later_node_lacking_permission_stops_the_earlier_ones_too() -> None:
    user = make_user("add_customer", "view_product")
    before = db_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(customer_then_product(), user=user)
    assert info.value.node_id == "product"
    assert info.value.permission == "shop.add_product"
    assert "node 'product' (ProductCreateNode)" in str(info.value)
    assert db_state() == before
    assert not Customer.objects.exists()


def test_user_with_the_right_permissions_runs() -> None:
    user = make_user("add_customer", "add_product", "view_product")
    results, _ = LocalRuntime().execute(customer_then_product(), user=user)
    assert Customer.objects.get().email == "ada@x.io"
    assert results["list"]["records"][0]["sku"] == "L-1"


def test_permissions_granted_through_a_group() -> None:
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="shop")
    codenames = ["add_customer", "add_product", "view_product"]
    group.permissions.add(*Permission.objects.filter(codename__in=codenames))
    user = make_user()
    user.groups.add(group)
    user = User.objects.get(pk=user.pk)
    LocalRuntime().execute(customer_then_product(), user=user)
    assert Product.objects.count() == 1


def test_superuser_runs() -> None:
    admin = User.objects.create_superuser("admin", "admin@example.com", None)
    results, _ = LocalRuntime().execute(customer_then_product(), user=admin)
    assert results["product"]["sku"] == "L-1"
    assert Customer.objects.count() == 1


def test_inactive_superuser_is_denied() -> None:
    admin = User.objects.create_superuser("admin", "admin@example.com", None, is_active=False)
    before = db_state()
    with pytest.raises(PermissionDenied, match=r"shop\.add_customer"):
        LocalRuntime().execute(customer_then_product(), user=admin)
    assert db_state() == before


def test_no_user_means_trusted_code() -> None:
    LocalRuntime().execute(customer_then_product(), user=None)
    assert Product.objects.count() == 1


@pytest.mark.parametrize(
    ("node", "params", "permission"),
    [
        ("ProductReadNode", {"id": 1}, "shop.view_product"),
        ("ProductListNode", {}, "shop.view_product"),
        ("ProductCountNode", {}, "shop.view_product"),
        ("ProductUpdateNode", {"id": 1, "fields": {"stock": 1}}, "shop.change_product"),
        ("ProductDeleteNode", {"id": 1}, "shop.delete_product"),
        ("ProductBulkCreateNode", {"data": [LAMP]}, "shop.add_product"),
        ("ProductBulkUpdateNode", {"filter": {"sku": "x"}, "fields": {"stock": 1}}, "shop.change_product"),
        ("ProductBulkDeleteNode", {"filter": {"sku": "x"}}, "shop.delete_product"),
        ("StockCountNode", {}, "shop.view_stocklevel"),
        ("UserListNode", {}, "auth.view_user"),
    ],
)
def test_each_operation_needs_its_permission(node: str, params: dict[str, Any], permission: str) -> None:
    workflow = build([(node, "n", params)])
    assert [p for _, _, p in required_permissions(workflow)] == [permission]
    user = make_user()
    before = db_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(workflow, user=user)
    assert f"node 'n' ({node}) needs permission '{permission}'" in str(info.value)
    assert db_state() == before


UPSERT = {"data": [{"name": "Lamp", "price": "1", "sku": "L-1"}], "conflict_on": ["sku"]}


@pytest.mark.parametrize(("granted", "missing"), [((), "add"), (("add_product",), "change"),
                                                  (("change_product",), "add")])
def test_bulk_upsert_needs_add_and_change(granted: tuple[str, ...], missing: str) -> None:
    workflow = build([("ProductBulkUpsertNode", "up", UPSERT)])
    assert [p for _, _, p in required_permissions(workflow)] == ["shop.add_product", "shop.change_product"]
    user = make_user(*granted)
    before = db_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(workflow, user=user)
    assert info.value.permission == f"shop.{missing}_product"
    assert f"node 'up' (ProductBulkUpsertNode) needs permission 'shop.{missing}_product'" in str(info.value)
    assert db_state() == before


def test_bulk_upsert_runs_with_add_and_change() -> None:
    workflow = build([("ProductBulkUpsertNode", "up", UPSERT)])
    results, _ = LocalRuntime().execute(workflow, user=make_user("add_product", "change_product"))
    assert results["up"]["created"] == 1
    assert Product.objects.get().sku == "L-1"


def test_stock_permissions_use_the_model_not_the_node_name() -> None:
    product = Product.objects.create(name="Lamp", sku="L-1", price="1")
    workflow = build([("StockCreateNode", "s", {"product_id": product.pk, "warehouse": "w"})])
    user = make_user()
    before = db_state()
    with pytest.raises(PermissionDenied, match=r"shop\.add_stocklevel"):
        LocalRuntime().execute(workflow, user=user)
    assert db_state() == before
    LocalRuntime().execute(workflow, user=make_user("add_stocklevel", username="stocker"))
    assert StockLevel.objects.count() == 1


def test_recorded_denied_run_is_marked_failed() -> None:
    before = Product.objects.count()
    with pytest.raises(PermissionDenied):
        LocalRuntime(record=True).execute(customer_then_product(), user=make_user())
    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert run.error_node == "customer"
    assert "shop.add_customer" in run.error
    assert Product.objects.count() == before
