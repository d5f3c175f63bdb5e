"""user=: model permissions of the models a name reaches through relations, and exclude_fields
that no node or surface can write, read, filter, sort, aggregate or return."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User

from django_dataflow import DataflowError, LocalRuntime, PermissionDenied, WorkflowValidationError
from django_dataflow.registry import get_entry, register, unregister
from shop.models import Order
from tests.conftest import build
from tests.security.conftest import database_state, make_user

pytestmark = pytest.mark.django_db


def execute(nodes: list[tuple], user: Any = None, **kwargs: Any) -> dict[str, Any]:
    results, _ = LocalRuntime().execute(build(nodes), user=user, **kwargs)
    return results


# Relations reach other models: their view permission is needed -------------------------------------

THROUGH_CUSTOMER = [
    ("OrderListNode", {"filter": {"customer.email": "ada@example.com"}}),
    ("OrderCountNode", {"filter": {"$or": [{"quantity": 1}, {"customer.name": {"$startswith": "A"}}]}}),
    ("OrderListNode", {"order_by": ["-customer.name"]}),
    ("OrderAggregateNode", {"pipeline": [{"$group": {"_id": "$customer.email", "n": {"$count": {}}}}]}),
    ("OrderAggregateNode", {"pipeline": [{"$match": {"customer.metadata.tier": "gold"}}]}),
    ("OrderReadNode", {"conditions": {"customer.email": "ada@example.com"}}),
    ("OrderBulkDeleteNode", {"filter": {"customer.email": "ada@example.com"}}),
    ("OrderBulkUpdateNode", {"filter": {"customer.pk": 1}, "fields": {"quantity": 3}}),
]


@pytest.mark.parametrize(("node_type", "params"), THROUGH_CUSTOMER)
def test_names_through_a_relation_need_view_permission_on_the_related_model(
    seeded: dict[str, Any], node_type: str, params: dict[str, Any]
) -> None:
    user = make_user("view_order", "change_order", "delete_order")
    before = database_state()
    with pytest.raises(PermissionDenied) as info:
        execute([(node_type, "probe", params)], user)
    assert database_state() == before
    error = info.value
    assert error.node_id == "probe"
    assert error.permission == "shop.view_customer"
    assert f"node 'probe' ({node_type})" in str(error)
    assert "reads shop.Customer, which needs permission 'shop.view_customer'" in str(error)


@pytest.mark.parametrize(("node_type", "params"), THROUGH_CUSTOMER)
def test_the_related_permission_is_checked_before_any_node_runs(
    seeded: dict[str, Any], node_type: str, params: dict[str, Any]
) -> None:
    user = make_user("add_order", "view_order", "change_order", "delete_order")
    workflow = build(
        [
            ("OrderCreateNode", "first", {"product_id": seeded["lamp"].pk, "quantity": 1}),
            (node_type, "probe", params),
        ]
    )
    before = database_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(workflow, user=user)
    assert database_state() == before
    assert info.value.node_id == "probe"
    assert info.value.permission == "shop.view_customer"


def test_names_from_inputs_are_checked_when_the_node_runs(seeded: dict[str, Any]) -> None:
    user = make_user("add_order", "view_order")
    workflow = build(
        [
            ("OrderCreateNode", "first", {"product_id": seeded["lamp"].pk, "quantity": 1}),
            ("OrderListNode", "probe", {"filter": "{{f}}"}),
        ]
    )
    before = database_state()
    with pytest.raises(PermissionDenied) as info:
        LocalRuntime().execute(workflow, {"f": {"customer.email": "ada@example.com"}}, user=user)
    assert database_state() == before  # the order created by 'first' was rolled back
    assert info.value.node_id == "probe"
    assert "node 'probe' (OrderListNode)" in str(info.value)
    assert info.value.permission == "shop.view_customer"


def test_with_the_related_permission_the_names_work(seeded: dict[str, Any]) -> None:
    user = make_user("view_order", "view_customer")
    results = execute([(t, f"n{i}", p) for i, (t, p) in enumerate(THROUGH_CUSTOMER[:5])], user)
    assert [r["reference"] for r in results["n0"]["records"]] == ["R-1"]
    assert results["n1"]["count"] == 2


def test_own_foreign_key_column_needs_no_related_permission(seeded: dict[str, Any]) -> None:
    user = make_user("view_order")
    results = execute(
        [("OrderListNode", "l", {"filter": {"customer": seeded["ada"].pk}, "order_by": ["customer_id"]})],
        user,
    )
    assert [r["reference"] for r in results["l"]["records"]] == ["R-1"]


def test_user_none_is_trusted_code(seeded: dict[str, Any]) -> None:
    results = execute([("OrderListNode", "l", {"filter": {"customer.email": "bob@example.com"}})])
    assert [r["reference"] for r in results["l"]["records"]] == ["R-2"]


def test_an_anonymous_user_holds_no_permission(seeded: dict[str, Any]) -> None:
    from django.contrib.auth.models import AnonymousUser

    before = database_state()
    with pytest.raises(PermissionDenied, match=r"shop\.view_order"):
        execute([("OrderCountNode", "c", {})], AnonymousUser())
    assert database_state() == before


# exclude_fields -------------------------------------------------------------------------------------

PASSWORD_PROBES = [
    ("UserCreateNode", {"username": "eve", "password": "x"}),
    ("UserUpdateNode", {"id": 1, "fields": {"password": "x"}}),
    ("UserReadNode", {"conditions": {"password": {"$startswith": "pbkdf2"}}}),
    ("UserListNode", {"filter": {"password": {"$regex": "^pbkdf2"}}}),
    ("UserListNode", {"filter": {"password__startswith": "pbkdf2"}}),
    ("UserListNode", {"filter": {"$or": [{"username": "root"}, {"password": {"$exists": True}}]}}),
    ("UserListNode", {"filter": {"$not": {"password": "x"}}}),
    ("UserListNode", {"order_by": ["password"]}),
    ("UserListNode", {"order_by": {"password": -1}}),
    ("UserListNode", {"fields": ["username", "password"]}),
    ("UserCountNode", {"filter": {"password": {"$in": ["a", "b"]}}}),
    ("UserAggregateNode", {"pipeline": [{"$group": {"_id": "$password"}}]}),
    ("UserAggregateNode", {"pipeline": [{"$group": {"_id": None, "p": {"$max": "$password"}}}]}),
    ("UserAggregateNode", {"pipeline": [{"$match": {"password": {"$gt": ""}}}]}),
    ("UserAggregateNode", {"pipeline": [{"$sort": {"password": 1}}]}),
    ("UserAggregateNode", {"pipeline": [{"$project": {"password": 1}}]}),
    ("UserBulkCreateNode", {"data": [{"username": "eve", "password": "x"}]}),
    ("UserBulkUpdateNode", {"filter": {"username": "root"}, "fields": {"password": "x"}}),
    ("UserBulkUpdateNode", {"data": [{"id": 1, "password": "x"}]}),
    ("UserBulkDeleteNode", {"filter": {"password": {"$ne": ""}}}),
    ("UserBulkUpsertNode", {"data": [{"username": "root", "password": "x"}], "conflict_on": ["username"]}),
    (
        "UserBulkUpsertNode",
        {"data": [{"username": "root"}], "conflict_on": ["username"], "update_fields": ["password"]},
    ),
    ("UserBulkUpsertNode", {"data": [{"username": "root"}], "conflict_on": ["password"]}),
]


@pytest.mark.parametrize(("node_type", "params"), PASSWORD_PROBES)
def test_an_excluded_field_is_unknown_to_every_node(
    untouched: Any, node_type: str, params: dict[str, Any]
) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "n", params)])
    assert "password" in str(info.value)
    assert "unknown" in str(info.value) or "not allowed" in str(info.value)


@pytest.mark.parametrize(("node_type", "params"), PASSWORD_PROBES)
def test_an_excluded_field_given_through_inputs_is_refused_at_run_time(
    untouched: Any, node_type: str, params: dict[str, Any]
) -> None:
    # The same params, arriving as one placeholder each: checked only when the node runs.
    workflow_params = {name: f"{{{{{name}}}}}" for name in params}
    with pytest.raises(DataflowError) as info:
        LocalRuntime().execute(build([(node_type, "n", workflow_params)]), params)
    assert "password" in str(info.value)


def test_no_result_carries_an_excluded_field(seeded: dict[str, Any]) -> None:
    results = execute(
        [
            ("UserReadNode", "read", {"conditions": {"username": "root"}}),
            ("UserListNode", "list", {}),
            ("UserUpdateNode", "update", {"conditions": {"username": "root"}, "fields": {"first_name": "R"}}),
            ("UserCreateNode", "create", {"username": "new"}),
            ("UserAggregateNode", "docs", {"pipeline": [{"$sort": {"username": 1}}]}),
        ]
    )
    text = repr(results)
    assert "password" not in text
    assert "secret-password" not in text and "pbkdf2" not in text
    assert results["read"]["username"] == "root"


@pytest.fixture
def groups_registered() -> Iterator[None]:
    """Group and Permission as nodes, the link from Group to Permission hidden."""
    register(Group, exclude_fields=["permissions"])
    register(Permission, exclude_fields=["content_type_id"])
    yield
    unregister(Group)
    unregister(Permission)
    assert get_entry(Group) is None


@pytest.mark.parametrize(
    ("node_type", "params"),
    [
        # Dotted paths into another model's excluded field.
        ("GroupListNode", {"filter": {"user.password": {"$startswith": "pbkdf2"}}}),
        ("GroupListNode", {"filter": {"user.password__startswith": "p"}}),
        ("GroupCountNode", {"filter": {"user.username": "root", "user.password": {"$exists": True}}}),
        ("GroupListNode", {"order_by": ["user.password"]}),
        ("GroupAggregateNode", {"pipeline": [{"$group": {"_id": "$user.password"}}]}),
        # The link Group.permissions is hidden: from either side.
        ("GroupListNode", {"filter": {"permissions.codename": "add_user"}}),
        ("PermissionListNode", {"filter": {"group.name": "staff"}}),
        # Excluded by attname: the foreign key is hidden under both its names.
        ("PermissionListNode", {"filter": {"content_type": 1}}),
        ("PermissionListNode", {"filter": {"content_type_id": 1}}),
        ("PermissionListNode", {"fields": ["content_type_id"]}),
        ("PermissionListNode", {"filter": {"content_type.app_label": "shop"}}),
    ],
)
def test_excluded_fields_of_related_models_and_hidden_links(
    groups_registered: None, untouched: Any, node_type: str, params: dict[str, Any]
) -> None:
    with pytest.raises(WorkflowValidationError, match=r"unknown field|not allowed|valid fields"):
        build([(node_type, "n", params)])


def test_visible_names_of_related_models_still_work(groups_registered: None, seeded: dict[str, Any]) -> None:
    staff = Group.objects.create(name="staff")
    User.objects.get(username="root").groups.add(staff)
    results = execute(
        [
            ("GroupListNode", "g", {"filter": {"user.username": "root"}}),
            ("PermissionListNode", "p", {"filter": {"codename": "add_user"}}),
        ]
    )
    assert [r["name"] for r in results["g"]["records"]] == ["staff"]
    assert "content_type_id" not in results["p"]["records"][0]
    assert Order.objects.count() == 3


# Deletes that cascade into other models -------------------------------------------------------------


@pytest.fixture
def stocked(seeded: dict[str, Any]) -> Any:
    """A product no order protects, with a stock level that a delete would cascade to."""
    from shop.models import Product, StockLevel

    chair = Product.objects.create(name="ada:Chair", sku="C-1", price="5")
    StockLevel.objects.create(product=chair, warehouse="bob-1", quantity=3)
    return chair


@pytest.mark.parametrize(
    "node",
    [
        ("ProductDeleteNode", {"conditions": {"sku": "C-1"}}),
        ("ProductBulkDeleteNode", {"filter": {"sku": "C-1"}}),
    ],
)
def test_a_cascade_needs_delete_permission_on_the_cascaded_model(stocked: Any, node: tuple) -> None:
    user = make_user("delete_product", "view_product")
    before = database_state()
    with pytest.raises(PermissionDenied) as info:
        execute([(node[0], "d", node[1])], user)
    assert database_state() == before
    assert info.value.node_id == "d"
    assert info.value.permission == "shop.delete_stocklevel"
    assert "also deletes shop.StockLevel rows (on_delete)" in str(info.value)


def test_a_cascade_with_the_permission_runs(stocked: Any) -> None:
    from shop.models import StockLevel

    user = make_user("delete_product", "delete_stocklevel")
    assert execute([("ProductDeleteNode", "d", {"conditions": {"sku": "C-1"}})], user)["d"]["deleted"] == 1
    assert not StockLevel.objects.exists()


def test_a_cascade_into_rows_hidden_by_a_row_filter_is_refused(stocked: Any, row_filters: Any) -> None:
    from django.db.models import Q

    row_filters(StockLevel=lambda user: Q(warehouse__startswith=f"{user.username}-"))
    user = make_user("delete_product", "delete_stocklevel", username="ada")
    before = database_state()
    with pytest.raises(PermissionDenied, match="outside the rows the user may change"):
        execute([("ProductBulkDeleteNode", "d", {"filter": {"sku": "C-1"}})], user)
    assert database_state() == before


def test_set_null_is_not_a_delete(seeded: dict[str, Any]) -> None:
    user = make_user("delete_customer")
    execute([("CustomerDeleteNode", "d", {"conditions": {"email": "bob@example.com"}})], user)
    assert Order.objects.get(reference="R-2").customer_id is None
