"""Workflow.to_dict() / from_dict(): the JSON form Celery, WorkflowDefinition and dataflow_run use."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from django_dataflow import LocalRuntime, Workflow, WorkflowValidationError
from django_dataflow.workflow.graph import FORMAT_VERSION
from shop.models import Customer, Order, Product
from tests.conftest import build

pytestmark = pytest.mark.django_db

VOLATILE = {"id", "created_at", "updated_at", "placed_at", "product_id", "customer_id"}


def sample() -> Workflow:
    return build(
        [
            ("CustomerCreateNode", "customer", {"name": "{{who}}", "email": "{{who}}@x.io",
                                                "metadata": {"tags": ["a", "b"], "n": 1}}),
            ("ProductCreateNode", "product", {"name": "Lamp", "price": "19.99", "sku": "{{sku}}"}),
            ("OrderCreateNode", "order", {"quantity": "{{qty}}"}),
            ("ProductListNode", "cheap", {"filter": {"price": {"$lt": 50}}, "order_by": {"created_at": -1},
                                          "limit": 10, "fields": ["sku", "price"]}),
            ("OrderCountNode", "orders", {"filter": {"quantity": {"$gte": 1}}}),
        ],
        [("product", "id", "order", "product_id"), ("customer", "id", "order", "customer_id")],
    )


def stable(results: dict[str, Any]) -> dict[str, Any]:
    """Results without values that differ between two otherwise equal runs."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, dict) and "records" not in value:
            value = {k: v for k, v in value.items() if k not in VOLATILE}
        out[key] = value
    return out


def test_to_dict_shape() -> None:
    data = sample().to_dict()
    assert data["version"] == FORMAT_VERSION
    assert [n["id"] for n in data["nodes"]] == ["customer", "product", "order", "cheap", "orders"]
    assert data["nodes"][1] == {
        "id": "product", "type": "ProductCreateNode",
        "params": {"name": "Lamp", "price": "19.99", "sku": "{{sku}}"},
    }
    assert data["connections"][0] == {
        "source": "product", "source_path": "id", "target": "order", "target_param": "product_id",
    }


def test_round_trip_through_json_gives_equal_dict_and_same_results() -> None:
    original = sample()
    text = json.dumps(original.to_dict())
    rebuilt = Workflow.from_dict(json.loads(text))
    assert rebuilt.to_dict() == original.to_dict()
    assert rebuilt.order == original.order
    assert rebuilt.input_names == original.input_names == {"who", "sku", "qty"}

    first, _ = LocalRuntime().execute(original, inputs={"who": "ada", "sku": "A", "qty": 2})
    second, _ = LocalRuntime().execute(rebuilt, inputs={"who": "bob", "sku": "B", "qty": 2})
    assert first["order"]["product_id"] == first["product"]["id"]
    assert second["order"]["product_id"] == second["product"]["id"]
    assert stable(first)["product"] == {**stable(second)["product"], "sku": "A"}
    assert stable(first)["order"] == stable(second)["order"]
    assert first["orders"] == {"count": 1}
    assert second["orders"] == {"count": 2}
    assert Order.objects.count() == 2


def test_read_only_round_trip_gives_identical_results(product: Any) -> None:
    Product.objects.create(name="Desk", sku="D-1", price="120.00")
    original = build(
        [
            ("ProductListNode", "list", {"filter": {"price": {"$gte": "10"}}, "order_by": ["-price"]}),
            ("ProductCountNode", "count", {}),
            ("ProductReadNode", "read", {}),
        ],
        [("list", "records.0.id", "read", "id")],
    )
    rebuilt = Workflow.from_json(original.to_json())
    assert LocalRuntime().execute(rebuilt)[0] == LocalRuntime().execute(original)[0]
    assert LocalRuntime().execute(rebuilt)[0]["read"]["sku"] == "D-1"


def test_decimal_and_datetime_params_serialize() -> None:
    product = Product.objects.create(name="Lamp", sku="L-1", price="1.00")
    when = dt.datetime(2024, 5, 17, 10, 30, tzinfo=dt.UTC)
    workflow = build(
        [
            ("ProductUpdateNode", "upd", {"id": product.pk, "fields": {"price": Decimal("19.99")}}),
            ("OrderCreateNode", "order", {"quantity": 1, "product_id": product.pk, "placed_at": when}),
            ("OrderCountNode", "since", {"filter": {"placed_at": {"$gte": dt.date(2024, 1, 1)}}}),
        ]
    )
    data = workflow.to_dict()
    text = json.dumps(data)  # would raise TypeError on a Decimal or datetime
    assert data["nodes"][0]["params"]["fields"]["price"] == "19.99"
    assert data["nodes"][1]["params"]["placed_at"] == "2024-05-17T10:30:00+00:00"
    assert data["nodes"][2]["params"]["filter"]["placed_at"]["$gte"] == "2024-01-01"

    results, _ = LocalRuntime().execute(Workflow.from_dict(json.loads(text)))
    product.refresh_from_db()
    assert product.price == Decimal("19.99")
    assert Order.objects.get().placed_at == when
    assert results["order"]["placed_at"] == "2024-05-17T10:30:00+00:00"
    assert results["since"] == {"count": 1}


def test_uuid_time_and_tuple_params_serialize() -> None:
    import uuid

    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    workflow = build(
        [("CustomerCreateNode", "c", {"name": "Ada", "email": "a@x.io",
                                      "metadata": {"ref": value, "at": dt.time(9, 5), "pair": (1, 2)}})]
    )
    params = json.loads(workflow.to_json())["nodes"][0]["params"]
    assert params["metadata"] == {"ref": str(value), "at": "09:05:00", "pair": [1, 2]}


def test_round_trip_keeps_bulk_data() -> None:
    workflow = build(
        [("ProductBulkCreateNode", "bulk", {"data": [{"name": "A", "sku": "A", "price": Decimal("1.5")},
                                                      {"name": "B", "sku": "B", "price": "2"}],
                                             "batch_size": 1})]
    )
    rebuilt = Workflow.from_dict(json.loads(workflow.to_json()))
    assert rebuilt.node("bulk").params["data"][0]["price"] == "1.5"
    assert LocalRuntime().execute(rebuilt)[0] == {"bulk": {"created": 2}}
    assert sorted(Product.objects.values_list("sku", "price")) == [("A", Decimal("1.5")), ("B", Decimal("2"))]


def test_runtime_accepts_the_dict_form() -> None:
    results, run_id = LocalRuntime().execute(
        sample().to_dict(), inputs={"who": "ada", "sku": "A", "qty": 1}
    )
    assert results["orders"] == {"count": 1}
    assert Customer.objects.get().email == "ada@x.io"
    assert isinstance(run_id, str) and len(run_id) == 36


# from_dict errors --------------------------------------------------------------------------------


def valid_dict() -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "nodes": [
            {"id": "p", "type": "ProductCreateNode", "params": {"name": "L", "price": "1", "sku": "L"}},
            {"id": "o", "type": "OrderCreateNode", "params": {"quantity": 1}},
        ],
        "connections": [{"source": "p", "source_path": "id", "target": "o", "target_param": "product_id"}],
    }


def test_valid_dict_builds() -> None:
    workflow = Workflow.from_dict(valid_dict())
    assert [n.id for n in workflow.nodes] == ["p", "o"]
    assert workflow.to_dict() == valid_dict()


def test_version_and_connections_are_optional() -> None:
    data = valid_dict()
    del data["version"]
    data["connections"] = []
    data["nodes"] = [{"id": "c", "type": "ProductCountNode"}]
    workflow = Workflow.from_dict(data)
    assert workflow.node("c").params == {}


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: [d], "a workflow must be an object, not list"),
        (lambda d: "nodes", "a workflow must be an object, not str"),
        (lambda d: None, "a workflow must be an object, not NoneType"),
        (lambda d: {**d, "extra": 1, "name": "x"}, "unknown workflow keys ['extra', 'name']"),
        (lambda d: {**d, "version": 2}, "workflow format version 2 is not supported (expected 1)"),
        (lambda d: {**d, "version": "1"}, "workflow format version '1' is not supported"),
        (lambda d: {**d, "nodes": {"p": {}}}, "'nodes' and 'connections' must be lists"),
        (lambda d: {k: v for k, v in d.items() if k != "nodes"}, "'nodes' and 'connections' must be lists"),
        (lambda d: {**d, "connections": "p->o"}, "'nodes' and 'connections' must be lists"),
        (lambda d: {**d, "nodes": ["p"]}, "nodes[0] must be an object, not str"),
        (lambda d: {**d, "nodes": [{"id": "p", "params": {}}]}, "nodes[0]: missing ['type']"),
        (lambda d: {**d, "nodes": [{"type": "ProductCountNode"}]}, "nodes[0]: missing ['id']"),
        (
            lambda d: {**d, "nodes": [*d["nodes"], {"id": "x", "type": "ProductCountNode", "parms": {}}]},
            "nodes[2]: unknown ['parms']",
        ),
        (
            lambda d: {**d, "connections": [{"source": "p", "target": "o", "target_param": "product_id"}]},
            "connections[0]: missing ['source_path']",
        ),
        (
            lambda d: {**d, "connections": [{**d["connections"][0], "via": "x"}]},
            "connections[0]: unknown ['via']",
        ),
        (
            lambda d: {**d, "nodes": [{"id": "p", "type": "ProductCreatNode", "params": {}}, d["nodes"][1]]},
            "unknown node type 'ProductCreatNode'",
        ),
    ],
)
def test_from_dict_errors(mutate: Any, fragment: str, unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict(mutate(valid_dict()))
    assert fragment in str(info.value)


def test_from_json_rejects_invalid_json(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="workflow JSON is not valid"):
        Workflow.from_json("{nodes: []")


def test_runtime_refuses_other_objects(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="expected a Workflow, not str"):
        LocalRuntime().execute("ProductCountNode")  # type: ignore[arg-type]


def test_generator_data_runs_but_cannot_be_serialized(unchanged_db: Any) -> None:
    def rows() -> Any:
        yield {"name": "A", "sku": "A", "price": "1"}

    workflow = build([("ProductBulkCreateNode", "bulk", {"data": rows()})])
    with pytest.raises(WorkflowValidationError) as info:
        workflow.to_dict()
    message = str(info.value)
    assert "node 'bulk'" in message
    assert "'data' is a generator" in message
    assert "only lists can be serialized" in message
    with pytest.raises(WorkflowValidationError, match="'data' is a generator"):
        workflow.to_json()


def test_generator_data_is_consumed_by_a_run() -> None:
    workflow = build(
        [("ProductBulkCreateNode", "bulk", {"data": ({"name": n, "sku": n, "price": "1"} for n in "ABC")})]
    )
    assert LocalRuntime().execute(workflow)[0] == {"bulk": {"created": 3}}
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("metadata", "where", "kind"),
    [
        ({"ids": {1, 2}}, "param 'metadata.ids'", "set"),
        ([1, object()], "param 'metadata.1'", "object"),
        (b"raw", "param 'metadata'", "bytes"),
    ],
)
def test_values_json_cannot_carry_are_refused_not_stringified(
    metadata: Any, where: str, kind: str, unchanged_db: Any
) -> None:
    workflow = build([("CustomerCreateNode", "c", {"name": "Ada", "email": "a@x.io", "metadata": metadata})])
    with pytest.raises(WorkflowValidationError) as info:
        workflow.to_dict()
    message = str(info.value)
    assert f"node 'c': {where} is a {kind}" in message
    assert "cannot be serialized to JSON" in message
