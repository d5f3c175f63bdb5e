"""WorkflowBuilder.build(): every validation problem, reported together, and execution order."""

from __future__ import annotations

from typing import Any

import pytest

from django_dataflow import LocalRuntime, WorkflowBuilder, WorkflowValidationError
from shop.models import Order, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

LAMP = {"name": "Lamp", "price": "19.99", "sku": "L-1"}


def assert_cycle(message: str, expected: list[str]) -> None:
    """The message shows the cycle, starting at any of its nodes."""
    rotations = [expected[i:] + expected[:i] for i in range(len(expected))]
    shown = [" -> ".join([*r, r[0]]) for r in rotations]
    assert any(f"the connections form a cycle: {s}" in message for s in shown), message


def build_error(nodes: list[tuple], connections: list[tuple] = ()) -> WorkflowValidationError:
    with pytest.raises(WorkflowValidationError) as info:
        build(nodes, connections)
    return info.value


# Unknown node types ------------------------------------------------------------------------------


def test_unknown_node_type_lists_valid_types_and_suggests_close_match(unchanged_db: Any) -> None:
    error = build_error([("ProductCreatNode", "create", LAMP)])
    message = str(error)
    assert "unknown node type 'ProductCreatNode'" in message
    assert "node 'create'" in message
    assert "Did you mean ProductCreateNode" in message
    assert "Valid node types:" in message
    for type_name in ("ProductCreateNode", "OrderListNode", "CustomerBulkUpsertNode", "StockReadNode"):
        assert type_name in message


def test_unknown_node_type_without_close_match_has_no_suggestion(unchanged_db: Any) -> None:
    message = str(build_error([("Zzzzzzzz", "x", {})]))
    assert "unknown node type 'Zzzzzzzz'" in message
    assert "Did you mean" not in message
    assert "ProductCreateNode" in message  # still lists the valid names


def test_non_string_node_type_is_reported(unchanged_db: Any) -> None:
    message = str(build_error([(42, "x", {})]))
    assert "unknown node type 42" in message


def test_unregistered_model_name_is_unknown(unchanged_db: Any) -> None:
    # StockLevel is registered under the name "Stock", so its class name makes no node type.
    message = str(build_error([("StockLevelCreateNode", "s", {})]))
    assert "unknown node type 'StockLevelCreateNode'" in message
    assert "StockCreateNode" in message


# Duplicate ids and bad ids -----------------------------------------------------------------------


def test_duplicate_node_id(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "create", LAMP),
            ("ProductCountNode", "create", {}),
        ]
    )
    assert error.errors == ["duplicate node id 'create'"]
    assert "duplicate node id 'create'" in str(error)


@pytest.mark.parametrize("bad_id", ["", None, 7, ["a"], "x" * 201])
def test_invalid_node_ids(bad_id: Any, unchanged_db: Any) -> None:
    message = str(build_error([("ProductCountNode", bad_id, {})]))
    assert "node ids must be non-empty strings" in message
    assert repr(bad_id) in message


def test_non_mapping_params_fail_in_add_node(unchanged_db: Any) -> None:
    builder = WorkflowBuilder()
    with pytest.raises(WorkflowValidationError) as info:
        builder.add_node("ProductCountNode", "count", ["filter"])  # type: ignore[arg-type]
    assert "params of node 'count' must be an object, not list" in str(info.value)
    assert info.value.node_id == "count"


# Cycles ------------------------------------------------------------------------------------------


def test_two_node_cycle_is_shown(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductReadNode", "a", {}),
            ("ProductReadNode", "b", {}),
        ],
        [("a", "id", "b", "id"), ("b", "id", "a", "id")],
    )
    cycles = [e for e in error.errors if "cycle" in e]
    assert len(cycles) == 1
    assert_cycle(cycles[0], ["a", "b"])


def test_self_connection_is_a_cycle(unchanged_db: Any) -> None:
    error = build_error([("ProductReadNode", "a", {"id": 1})], [("a", "id", "a", "conditions")])
    assert "the connections form a cycle: a -> a" in str(error)


def test_longer_cycle_beside_a_valid_branch(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "root", LAMP),
            ("ProductReadNode", "x", {}),
            ("ProductReadNode", "y", {}),
            ("ProductReadNode", "z", {}),
        ],
        [
            ("root", "id", "x", "id"),
            ("x", "id", "y", "id"),
            ("y", "id", "z", "id"),
            ("z", "id", "x", "conditions"),
        ],
    )
    cycles = [e for e in error.errors if "cycle" in e]
    assert len(cycles) == 1
    assert_cycle(cycles[0], ["x", "y", "z"])
    assert "root" not in cycles[0]


# Connections -------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing_end", ["source", "target"])
def test_connection_to_missing_node_lists_nodes(missing_end: str, unchanged_db: Any) -> None:
    connection = ("ghost", "id", "order", "product_id")
    if missing_end == "target":
        connection = ("create", "id", "ghost", "product_id")
    error = build_error(
        [
            ("ProductCreateNode", "create", LAMP),
            ("OrderCreateNode", "order", {"quantity": 1, "product_id": 1}),
        ],
        [connection],
    )
    message = str(error)
    assert "no node 'ghost'" in message
    assert "nodes: create, order" in message


def test_connection_to_unknown_target_param_lists_valid_params(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "create", LAMP),
            ("OrderCreateNode", "order", {"quantity": 1, "product_id": 1}),
        ],
        [("create", "id", "order", "prodcut")],
    )
    message = str(error)
    assert "node 'order' (OrderCreateNode)" in message
    assert "unknown param 'prodcut' for OrderCreateNode" in message
    assert "valid params:" in message
    for param in ("product_id", "quantity", "customer_id", "status"):
        assert param in message


def test_connection_from_missing_result_key_lists_keys(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "create", LAMP),
            ("OrderCreateNode", "order", {"quantity": 1}),
        ],
        [("create", "nope", "order", "product_id")],
    )
    message = str(error)
    assert "ProductCreateNode results have no 'nope'" in message
    assert "they have:" in message
    for key in ("id", "sku", "price", "created_at"):
        assert key in message


def test_connection_from_missing_key_of_list_result(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductListNode", "list", {}),
            ("OrderCreateNode", "order", {"quantity": 1}),
        ],
        [("list", "rows.0.id", "order", "product_id")],
    )
    message = str(error)
    assert "ProductListNode results have no 'rows'" in message
    assert "count, next_cursor, records, total" in message


def test_connection_path_with_empty_segment(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductListNode", "list", {}),
            ("OrderCreateNode", "order", {"quantity": 1}),
        ],
        [("list", "records..id", "order", "product_id")],
    )
    assert "paths must not have empty segments" in str(error)


def test_two_connections_into_one_param(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "a", LAMP),
            ("ProductCreateNode", "b", {**LAMP, "sku": "L-2"}),
            ("OrderCreateNode", "order", {"quantity": 1}),
        ],
        [("a", "id", "order", "product_id"), ("b", "id", "order", "product_id")],
    )
    assert "'product_id' of 'order' is already connected" in str(error)


# Params ------------------------------------------------------------------------------------------


def test_unknown_model_field_in_params_lists_fields(unchanged_db: Any) -> None:
    error = build_error([("ProductCreateNode", "create", {**LAMP, "colour": "red"})])
    message = str(error)
    assert "node 'create' (ProductCreateNode)" in message
    assert "unknown param 'colour' for ProductCreateNode" in message
    for field in ("name", "sku", "price", "stock", "active", "description"):
        assert field in message


def test_unknown_field_in_update_fields(unchanged_db: Any) -> None:
    error = build_error([("ProductUpdateNode", "upd", {"id": 1, "fields": {"colour": "red"}})])
    message = str(error)
    assert "unknown field 'colour' in fields of ProductUpdateNode" in message
    assert "valid fields:" in message
    assert "price" in message


def test_unknown_field_in_filter(unchanged_db: Any) -> None:
    error = build_error([("ProductListNode", "list", {"filter": {"colour": "red"}})])
    message = str(error)
    assert "colour" in message
    assert "price" in message  # the valid names are listed


def test_unknown_operator_in_filter(unchanged_db: Any) -> None:
    error = build_error([("ProductListNode", "list", {"filter": {"price": {"$lesser": 5}}})])
    message = str(error)
    assert "$lesser" in message
    assert "$lt" in message


def test_missing_required_params_reported_by_build_not_add_node(unchanged_db: Any) -> None:
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "create", {"name": "Lamp"})  # must not raise
    builder.add_node("OrderCreateNode", "order", {})  # must not raise
    with pytest.raises(WorkflowValidationError) as info:
        builder.build()
    errors = info.value.errors
    assert "node 'create' (ProductCreateNode): missing required field 'sku' for ProductCreateNode" in errors
    assert "node 'create' (ProductCreateNode): missing required field 'price' for ProductCreateNode" in errors
    assert any("missing required field 'product_id' for OrderCreateNode" in e for e in errors)
    assert any("missing required field 'quantity' for OrderCreateNode" in e for e in errors)
    assert not any("'name'" in e for e in errors)
    assert not any("customer" in e for e in errors)  # nullable FK is optional


def test_required_params_satisfied_by_connections() -> None:
    workflow = build(
        [
            ("ProductCreateNode", "create", LAMP),
            ("ProductCountNode", "n", {}),
            ("OrderCreateNode", "order", {}),
        ],
        [("create", "id", "order", "product_id"), ("n", "count", "order", "quantity")],
    )
    results, _ = LocalRuntime().execute(workflow)
    order = Order.objects.get()
    assert order.product_id == results["create"]["id"]
    assert results["n"] == {"count": 1}
    assert order.quantity == 1


def test_required_fk_by_field_name_or_attname() -> None:
    product = Product.objects.create(name="Lamp", sku="L-9", price="1.00")
    for index, key in enumerate(("product", "product_id")):
        results = run([("OrderCreateNode", "o", {"quantity": 1, key: product.pk, "reference": f"r{index}"})])
        assert results["o"]["product_id"] == product.pk
    assert Order.objects.filter(product=product).count() == 2


def test_read_without_id_or_conditions(unchanged_db: Any) -> None:
    message = str(build_error([("ProductReadNode", "read", {})]))
    assert "ProductReadNode needs 'id' or 'conditions'" in message


def test_update_without_fields(unchanged_db: Any) -> None:
    message = str(build_error([("ProductUpdateNode", "upd", {"id": 1})]))
    assert "ProductUpdateNode needs 'fields'" in message


def test_several_problems_reported_together(unchanged_db: Any) -> None:
    error = build_error(
        [
            ("ProductCreateNode", "create", {"name": "Lamp", "colour": "red"}),
            ("ProductCreateNode", "create", LAMP),
            ("NoSuchNode", "ghost", {}),
            ("OrderCreateNode", "order", {"quantity": 1}),
        ],
        [("create", "nope", "order", "product_id"), ("order", "id", "missing", "id")],
    )
    message = str(error)
    assert len(error.errors) >= 5
    assert message.startswith(f"{len(error.errors)} problems:")
    for fragment in (
        "duplicate node id 'create'",
        "unknown node type 'NoSuchNode'",
        "unknown param 'colour'",
        "results have no 'nope'",
        "no node 'missing'",
    ):
        assert fragment in message
        assert sum(fragment in e for e in error.errors) == 1


def test_valid_workflow_builds_and_exposes_graph() -> None:
    workflow = build(
        [("ProductCreateNode", "create", LAMP), ("OrderCreateNode", "order", {"quantity": 2})],
        [("create", "id", "order", "product_id")],
    )
    assert [n.id for n in workflow.nodes] == ["create", "order"]
    assert workflow.node("order").params == {"quantity": 2}
    assert workflow.node_class("create").type_name == "ProductCreateNode"
    assert [str(c) for c in workflow.incoming["order"]] == ["create.id -> order.product_id"]
    assert workflow.writes is True


def test_build_is_repeatable_and_nodes_added_later_are_validated() -> None:
    builder = WorkflowBuilder()
    builder.add_node("ProductCountNode", "count", {})
    first = builder.build()
    builder.add_node("Bogus", "b", {})
    with pytest.raises(WorkflowValidationError, match="unknown node type 'Bogus'"):
        builder.build()
    assert [n.id for n in first.nodes] == ["count"]


# Execution order ---------------------------------------------------------------------------------


def test_independent_nodes_run_in_the_order_added() -> None:
    names = ["zeta", "alpha", "mid", "beta"]
    nodes = [("ProductCreateNode", name, {**LAMP, "sku": name}) for name in names]
    workflow = build(nodes)
    assert list(workflow.order) == names
    results, _ = LocalRuntime().execute(workflow)
    ids = [results[name]["id"] for name in names]
    assert ids == sorted(ids)  # created in the order added
    assert list(results) == names


@pytest.mark.parametrize("count_first", [True, False])
def test_unconnected_count_sees_writes_of_earlier_nodes_only(count_first: bool) -> None:
    create = ("ProductCreateNode", "create", LAMP)
    count = ("ProductCountNode", "count", {})
    results = run([count, create] if count_first else [create, count])
    assert results["count"] == {"count": 0 if count_first else 1}


def test_independent_bulk_nodes_report_progress_in_the_order_added() -> None:
    seen: list[tuple[str, int, int | None]] = []
    workflow = build(
        [
            ("ProductBulkCreateNode", "second", {"data": [{**LAMP, "sku": "B-1"}]}),
            ("CustomerBulkCreateNode", "first", {"data": [{"name": "A", "email": "a@x.io"}]}),
            ("ProductBulkCreateNode", "third", {"data": [{**LAMP, "sku": "B-2"}, {**LAMP, "sku": "B-3"}]}),
        ]
    )
    LocalRuntime(progress=lambda node, done, total: seen.append((node, done, total))).execute(workflow)
    assert seen == [("second", 1, 1), ("first", 1, 1), ("third", 2, 2)]


def test_dependency_order_respected_when_added_out_of_order() -> None:
    workflow = build(
        [
            ("OrderReadNode", "read", {}),
            ("OrderCreateNode", "order", {"quantity": 3}),
            ("ProductCountNode", "before", {}),
            ("ProductCreateNode", "product", LAMP),
        ],
        [("order", "id", "read", "id"), ("product", "id", "order", "product_id")],
    )
    # 'before' has no dependency; it waits for nothing, so it runs first even though added third.
    assert list(workflow.order) == ["before", "product", "order", "read"]
    results, _ = LocalRuntime().execute(workflow)
    assert list(results) == ["before", "product", "order", "read"]
    assert results["before"] == {"count": 0}
    assert results["order"]["product_id"] == results["product"]["id"]
    assert results["read"]["id"] == results["order"]["id"]
    assert results["read"]["quantity"] == 3
