"""register(..., row_filter=callable(user) -> Q): every node of the model sees and changes only the
rows the Q selects for the run's user; user=None (trusted code) sees everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from django_dataflow import CeleryRuntime, DataflowError, LocalRuntime, PermissionDenied, RecordNotFound
from django_dataflow.conf import ModelSetting
from django_dataflow.registry import get_entry, register, registry, unregister
from shop.models import Order, Product
from tests.conftest import build
from tests.security.conftest import (
    ALL_SHOP,
    database_state,
    make_user,
    own_customers,
    own_orders,
    own_products,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(seeded: dict[str, Any], row_filters: Callable[..., None]) -> User:
    """A user with every shop permission, limited to Ada's products, orders and customer."""
    row_filters(Product=own_products, Order=own_orders, Customer=own_customers)
    return make_user(*ALL_SHOP, username="ada", email="ada@example.com")


def execute(nodes: list[tuple], user: Any, connections: list[tuple] = (), **kwargs: Any) -> dict[str, Any]:
    results, _ = LocalRuntime().execute(build(nodes, connections), user=user, **kwargs)
    return results


def refused(nodes: list[tuple], user: Any, error: type[Exception] = PermissionDenied, **kwargs: Any) -> Any:
    """Run, expect the error, and check that no table changed; returns the error."""
    before = database_state()
    with pytest.raises(error) as info:
        execute(nodes, user, **kwargs)
    assert database_state() == before
    return info.value


# Reads ---------------------------------------------------------------------------------------------


def test_list_count_and_aggregate_see_only_the_users_rows(ada: User) -> None:
    results = execute(
        [
            ("ProductListNode", "list", {"with_total": True}),
            ("ProductCountNode", "count", {}),
            ("ProductAggregateNode", "agg", {"pipeline": [{"$group": {"_id": None, "n": {"$count": {}}}}]}),
            ("OrderListNode", "orders", {}),
        ],
        ada,
    )
    assert [r["name"] for r in results["list"]["records"]] == ["ada:Lamp"]
    assert results["list"]["total"] == 1
    assert results["count"] == {"count": 1}
    assert results["agg"]["results"] == [{"_id": None, "n": 1}]
    assert [r["reference"] for r in results["orders"]["records"]] == ["R-1"]


def test_trusted_code_sees_every_row(ada: User) -> None:
    results = execute([("ProductCountNode", "c", {}), ("OrderCountNode", "o", {})], None)
    assert results == {"c": {"count": 2}, "o": {"count": 3}}


def test_read_of_a_hidden_row_is_not_found(ada: User, seeded: dict[str, Any]) -> None:
    error = refused([("ProductReadNode", "r", {"id": seeded["desk"].pk})], ada, RecordNotFound)
    assert "no Product matches" in str(error)
    missing = execute([("ProductReadNode", "r", {"id": seeded["desk"].pk, "required": False})], ada)
    assert missing == {"r": None}


@pytest.mark.parametrize(
    "node",
    [
        ("ProductUpdateNode", "u", {"conditions": {"sku": "D-1"}, "fields": {"stock": 0}}),
        ("ProductDeleteNode", "d", {"conditions": {"sku": "D-1"}}),
        ("OrderDeleteNode", "d", {"conditions": {"reference": "R-2"}}),
    ],
)
def test_update_and_delete_cannot_reach_a_hidden_row(ada: User, node: tuple) -> None:
    error = refused([node], ada, RecordNotFound)
    assert error.node_id == node[1]


# Writes that would leave the user's rows -----------------------------------------------------------


def test_create_outside_the_users_rows_is_refused(ada: User) -> None:
    error = refused([("ProductCreateNode", "c", {"name": "bob:Chair", "sku": "C-1", "price": "5"})], ada)
    assert error.node_id == "c"
    assert "outside the rows the user may change" in str(error)
    assert "ProductCreateNode" in str(error)


def test_create_inside_the_users_rows_runs(ada: User) -> None:
    results = execute([("ProductCreateNode", "c", {"name": "ada:Chair", "sku": "C-1", "price": "5"})], ada)
    assert Product.objects.get(pk=results["c"]["id"]).name == "ada:Chair"


def test_update_moving_a_row_out_of_reach_is_refused(ada: User) -> None:
    node = ("ProductUpdateNode", "u", {"conditions": {"sku": "L-1"}, "fields": {"name": "bob:Lamp"}})
    error = refused([node], ada)
    assert error.node_id == "u"
    assert Product.objects.get(sku="L-1").name == "ada:Lamp"


def test_bulk_update_by_filter_touches_only_the_users_rows(ada: User) -> None:
    results = execute([("ProductBulkUpdateNode", "b", {"all": True, "fields": {"stock": 42}})], ada)
    assert results["b"] == {"updated": 1}
    assert dict(Product.objects.values_list("sku", "stock")) == {"L-1": 42, "D-1": 2}


def test_bulk_update_by_filter_moving_rows_out_is_refused(ada: User) -> None:
    error = refused([("ProductBulkUpdateNode", "b", {"all": True, "fields": {"name": "bob:x"}})], ada)
    assert isinstance(error, PermissionDenied) and error.node_id == "b"


def test_bulk_update_by_data_skips_hidden_rows_and_refuses_moving_out(
    ada: User, seeded: dict[str, Any]
) -> None:
    lamp, desk = seeded["lamp"].pk, seeded["desk"].pk
    data = [{"id": lamp, "stock": 9}, {"id": desk, "stock": 9}]
    results = execute([("ProductBulkUpdateNode", "b", {"data": data})], ada)
    assert results["b"] == {"updated": 1}
    assert dict(Product.objects.values_list("sku", "stock")) == {"L-1": 9, "D-1": 2}
    refused([("ProductBulkUpdateNode", "b", {"data": [{"id": lamp, "name": "bob:Lamp"}]})], ada)


def test_bulk_delete_removes_only_the_users_rows(ada: User) -> None:
    results = execute([("OrderBulkDeleteNode", "d", {"all": True})], ada)
    assert results["d"] == {"deleted": 1}
    assert sorted(Order.objects.values_list("reference", flat=True)) == ["R-2", "R-3"]


def test_bulk_delete_by_ids_skips_hidden_rows(ada: User, seeded: dict[str, Any]) -> None:
    ids = [o.pk for o in seeded["orders"]]
    assert execute([("OrderBulkDeleteNode", "d", {"ids": ids})], ada)["d"] == {"deleted": 1}
    assert Order.objects.count() == 2


def test_bulk_create_outside_the_users_rows_is_refused(ada: User) -> None:
    data = [{"name": "ada:A", "sku": "A-1", "price": "1"}, {"name": "bob:B", "sku": "B-1", "price": "1"}]
    error = refused([("ProductBulkCreateNode", "b", {"data": data})], ada)
    assert "1 row(s) of shop.Product" in str(error)


def test_bulk_upsert_cannot_take_over_a_hidden_row(ada: User) -> None:
    # The desk (bob's) has sku D-1: an upsert on sku would update it and move it into ada's rows.
    data = [{"sku": "D-1", "name": "ada:Desk", "price": "1"}]
    error = refused([("ProductBulkUpsertNode", "u", {"data": data, "conflict_on": ["sku"]})], ada)
    assert "same key exists outside the rows the user may change" in str(error)


def test_bulk_upsert_cannot_insert_or_move_rows_out(ada: User) -> None:
    node = (
        "ProductBulkUpsertNode",
        "u",
        {"data": [{"sku": "N-1", "name": "bob:New", "price": "1"}], "conflict_on": ["sku"]},
    )
    assert refused([node], ada).node_id == "u"
    moved = (
        "ProductBulkUpsertNode",
        "u",
        {"data": [{"sku": "L-1", "name": "bob:Lamp", "price": "1"}], "conflict_on": ["sku"]},
    )
    assert refused([moved], ada).node_id == "u"


def test_bulk_upsert_within_the_users_rows_runs(ada: User) -> None:
    data = [
        {"sku": "L-1", "name": "ada:Lamp 2", "price": "2"},
        {"sku": "N-1", "name": "ada:New", "price": "3"},
    ]
    results = execute([("ProductBulkUpsertNode", "u", {"data": data, "conflict_on": ["sku"]})], ada)
    assert results["u"] == {"created": 1, "updated": 1}
    assert Product.objects.get(sku="L-1").name == "ada:Lamp 2"


def test_bulk_upsert_within_the_users_rows_fires_its_triggers(
    ada: User, django_capture_on_commit_callbacks: Any
) -> None:
    # The row filter sends the upsert through UpsertWriter, whose keyed statement must keep the checks.
    import django_dataflow

    made = [django_dataflow.on_commit_of(Product, e, definition="audit") for e in ("created", "updated")]
    data = [
        {"sku": "L-1", "name": "ada:Lamp 2", "price": "2"},
        {"sku": "N-1", "name": "ada:New", "price": "3"},
    ]
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            results = execute([("ProductBulkUpsertNode", "u", {"data": data, "conflict_on": ["sku"]})], ada)
            hidden = [{"sku": "D-1", "name": "ada:Desk", "price": "1"}]  # bob's desk
            refused([("ProductBulkUpsertNode", "u", {"data": hidden, "conflict_on": ["sku"]})], ada)
    finally:
        for trigger in made:
            trigger.disconnect()
    assert results["u"] == {"created": 1, "updated": 1}
    submitted = {cb.args[0]["event"]: cb.args[0]["pks"] for cb in callbacks}  # partial(_submit, inputs, ...)
    lamp, new = (Product.objects.get(sku=s).pk for s in ("L-1", "N-1"))
    assert submitted == {"created": [new], "updated": [lamp]}  # the refused upsert added nothing


def test_composite_conflict_keys_are_checked(ada: User, seeded: dict[str, Any], row_filters: Any) -> None:
    from shop.models import StockLevel

    row_filters(StockLevel=lambda user: Q(warehouse__startswith=f"{user.username}-"))
    StockLevel.objects.create(product=seeded["lamp"], warehouse="bob-1", quantity=1)
    data = [{"product_id": seeded["lamp"].pk, "warehouse": "bob-1", "quantity": 5}]
    node = ("StockBulkUpsertNode", "s", {"data": data, "conflict_on": ["product", "warehouse"]})
    refused([node], ada)
    assert StockLevel.objects.get().quantity == 1


# Relations into row-filtered models ----------------------------------------------------------------


def test_filters_through_a_relation_see_only_visible_related_rows(ada: User) -> None:
    # Ada may see her orders only; bob's order (quantity 1) must not make a customer match.
    results = execute(
        [
            ("CustomerListNode", "eq", {"filter": {"orders.quantity": 1}}),
            ("CustomerListNode", "ne", {"filter": {"orders.quantity": {"$ne": 1}}}),
        ],
        ada,
    )
    assert results["eq"]["records"] == []
    assert [r["name"] for r in results["ne"]["records"]] == ["Ada"]


def test_negations_learn_nothing_about_hidden_related_rows(ada: User, seeded: dict[str, Any]) -> None:
    # Give Ada an order whose product is bob's desk: Product is limited to ada's products.
    Order.objects.create(customer=seeded["ada"], product=seeded["desk"], quantity=3, reference="R-4")
    probes = {
        "hit": {"product.sku": "D-1"},
        "miss": {"product.sku": "nope"},
        "ne_hit": {"product.sku": {"$ne": "D-1"}},
        "ne_miss": {"product.sku": {"$ne": "nope"}},
    }
    results = execute([("OrderListNode", k, {"filter": f}) for k, f in probes.items()], ada)
    refs = {k: sorted(r["reference"] for r in v["records"]) for k, v in results.items()}
    # The hidden desk behaves like no product at all, whatever its sku is.
    assert refs["hit"] == refs["miss"] == []
    assert refs["ne_hit"] == refs["ne_miss"] == ["R-1", "R-4"]


@pytest.mark.parametrize(
    "node",
    [
        ("OrderListNode", "o", {"order_by": ["product.sku"]}),
        ("OrderAggregateNode", "a", {"pipeline": [{"$group": {"_id": "$product.sku"}}]}),
        ("OrderAggregateNode", "a", {"pipeline": [{"$sort": {"product.price": 1}}]}),
        (
            "OrderAggregateNode",
            "a",
            {"pipeline": [{"$group": {"_id": None, "m": {"$max": "$product.price"}}}]},
        ),
    ],
)
def test_ordering_or_grouping_by_a_row_filtered_relation_is_refused(ada: User, node: tuple) -> None:
    error = refused([node], ada)
    assert "row_filter" in str(error)
    assert error.node_id == node[1]


# Configuration -------------------------------------------------------------------------------------


def test_row_filter_must_return_a_q(seeded: dict[str, Any], row_filters: Any) -> None:
    row_filters(Product=lambda user: {"name": "x"})
    user = make_user("view_product")
    with pytest.raises(Exception, match="must return a Q object") as info:
        execute([("ProductCountNode", "c", {})], user)
    assert isinstance(info.value.__cause__, ImproperlyConfigured)


def test_register_takes_a_row_filter_and_compares_it() -> None:
    def mine(user: Any) -> Q:
        return Q(name=user.username)

    try:
        assert register(Group, row_filter=mine) is Group
        entry = get_entry(Group)
        assert entry.row_filter is mine
        register(Group, row_filter=mine)  # the same options: a no-op
        assert get_entry(Group) is entry
        with pytest.raises(ImproperlyConfigured, match="row_filter"):
            register(Group, row_filter=lambda user: Q())
    finally:
        unregister(Group)
    with pytest.raises(ImproperlyConfigured, match="must be a callable"):
        register(Group, row_filter="not callable")  # type: ignore[arg-type]
    assert get_entry(Group) is None


def group_row_filter(user: Any) -> Q:
    """Used by dotted path from a DATAFLOW['MODELS'] entry."""
    return Q(name__startswith=user.username)


def test_models_setting_names_a_row_filter_by_dotted_path() -> None:
    path = "tests.security.test_row_filter.group_row_filter"
    try:
        registry().populate([ModelSetting("auth.Group", row_filter=path)])
        assert get_entry(Group).row_filter is group_row_filter
        Group.objects.create(name="clerk-team")
        Group.objects.create(name="other")
        user = make_user("view_group")
        assert execute([("GroupCountNode", "c", {})], user) == {"c": {"count": 1}}
    finally:
        unregister(Group)
    with pytest.raises(ImproperlyConfigured, match=r"row_filter of 'auth\.Group'"):
        registry().populate([ModelSetting("auth.Group", row_filter="tests.nowhere.nothing")])
    assert get_entry(Group) is None


def test_celery_runs_apply_the_row_filter_of_the_submitting_user(
    ada: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        counted = CeleryRuntime().submit(build([("ProductCountNode", "c", {})]), user=ada)
    assert counted.wait() == {"c": {"count": 1}}
    before = database_state()
    workflow = build([("ProductCreateNode", "c", {"name": "bob:X", "sku": "X", "price": "1"})])
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(workflow, user=ada)
    with pytest.raises(DataflowError, match="outside the rows the user may change"):
        handle.wait()
    assert handle.record().error_type == "PermissionDenied"
    assert not Product.objects.filter(sku="X").exists()
    after = database_state()
    after.pop("django_dataflow_workflowrun"), before.pop("django_dataflow_workflowrun")
    assert after == before  # only the run's own record changed


def test_is_limited_tells_bulk_paths_when_a_row_filter_applies(ada: User) -> None:
    from django_dataflow import access
    from django_dataflow.nodes import scope
    from django_dataflow.registry import get_node_class

    node = get_node_class("ProductBulkCreateNode")
    assert scope.is_limited(node) is False  # no run: trusted code
    with access.active(ada):
        assert scope.is_limited(node) is True
        assert scope.is_limited(get_node_class("StockBulkCreateNode")) is False
    with access.active(None):
        assert scope.is_limited(node) is False
