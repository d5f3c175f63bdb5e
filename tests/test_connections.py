"""Connections: dotted source paths into results, dotted target params, run-time path errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from django_dataflow import LocalRuntime, NodeExecutionError
from shop.models import Customer, Order, Product
from tests.conftest import build, db_state, run

pytestmark = pytest.mark.django_db

LAMP = {"name": "Lamp", "price": "19.99", "sku": "L-1"}


def test_top_level_source_path() -> None:
    results = run(
        [("ProductCreateNode", "p", LAMP), ("OrderCreateNode", "o", {"quantity": 1})],
        [("p", "id", "o", "product_id")],
    )
    assert Order.objects.get().product_id == results["p"]["id"] == Product.objects.get().pk


def test_indexed_source_path_into_list_records() -> None:
    first = Product.objects.create(name="A", sku="A", price="1.00")
    second = Product.objects.create(name="B", sku="B", price="2.00")
    results = run(
        [
            ("ProductListNode", "list", {"order_by": ["sku"]}),
            ("OrderCreateNode", "o0", {"quantity": 1, "reference": "r0"}),
            ("OrderCreateNode", "o1", {"quantity": 1, "reference": "r1"}),
            ("OrderCreateNode", "last", {"quantity": 1, "reference": "r2"}),
        ],
        [
            ("list", "records.0.id", "o0", "product_id"),
            ("list", "records.1.id", "o1", "product_id"),
            ("list", "records.-1.id", "last", "product_id"),
        ],
    )
    assert results["o0"]["product_id"] == first.pk
    assert results["o1"]["product_id"] == second.pk
    assert results["last"]["product_id"] == second.pk


def test_source_path_into_json_field_value(customer: Any) -> None:
    results = run(
        [
            ("CustomerReadNode", "c", {"id": customer.pk}),
            ("CustomerCreateNode", "copy", {"name": "Copy", "email": "copy@x.io"}),
        ],
        [("c", "metadata.tier", "copy", "tier")],
    )
    assert results["copy"]["tier"] == "gold"


def test_whole_result_can_be_connected(product: Any) -> None:
    results = run(
        [
            ("ProductListNode", "list", {"fields": ["sku", "price"]}),
            ("CustomerCreateNode", "c", {"name": "Ada", "email": "a@x.io"}),
        ],
        [("list", "records", "c", "metadata")],
    )
    assert Customer.objects.get().metadata == [{"sku": "L-1", "price": "19.99"}]
    assert results["c"]["metadata"] == [{"sku": "L-1", "price": "19.99"}]


def test_dotted_target_param_merges_into_static_dict(product: Any) -> None:
    source = Product.objects.create(name="Source", sku="S", price="77.50", stock=3)
    results = run(
        [
            ("ProductReadNode", "src", {"id": source.pk}),
            ("ProductUpdateNode", "upd", {"id": product.pk, "fields": {"name": "Renamed"}}),
        ],
        [("src", "price", "upd", "fields.price"), ("src", "stock", "upd", "fields.stock")],
    )
    product.refresh_from_db()
    assert (product.name, product.price, product.stock) == ("Renamed", Decimal("77.50"), 3)
    assert results["upd"]["price"] == "77.50"


def test_dotted_target_param_creates_missing_dict(product: Any) -> None:
    results = run(
        [
            ("ProductCreateNode", "other", {"name": "Other", "price": "1", "sku": "O-1"}),
            ("ProductReadNode", "read", {}),
        ],
        [("other", "sku", "read", "conditions.sku")],
    )
    assert results["read"]["sku"] == "O-1"
    assert results["read"]["id"] == results["other"]["id"]


def test_dotted_target_param_keeps_static_conditions(product: Any) -> None:
    second = Product.objects.create(name="Lamp", sku="L-2", price="5.00")
    results = run(
        [
            ("CustomerCreateNode", "c", {"name": "L-2", "email": "c@x.io"}),
            ("ProductReadNode", "hit", {"conditions": {"name": "Lamp"}}),
            ("ProductReadNode", "miss", {"conditions": {"name": "Other"}, "required": False}),
            ("ProductCountNode", "count", {"filter": {"name": "Lamp"}}),
        ],
        [
            ("c", "name", "hit", "conditions.sku"),
            ("c", "name", "miss", "conditions.sku"),
            ("c", "name", "count", "filter.sku"),
        ],
    )
    assert results["hit"]["id"] == second.pk
    assert results["miss"] is None  # name == 'Other' still applies beside the connected sku
    assert results["count"] == {"count": 1}


def test_connected_id_and_static_conditions_both_hold(product: Any) -> None:
    other = Product.objects.create(name="Other", sku="O", price="1.00")
    results = run(
        [
            ("ProductListNode", "list", {"order_by": ["sku"]}),  # L-1 then O
            ("ProductReadNode", "same", {"conditions": {"sku": "L-1"}, "required": False}),
            ("ProductReadNode", "differ", {"conditions": {"sku": "L-1"}, "required": False}),
        ],
        [("list", "records.0.id", "same", "id"), ("list", "records.1.id", "differ", "id")],
    )
    assert results["same"]["id"] == product.pk
    assert results["differ"] is None
    assert results["list"]["records"][1]["id"] == other.pk


def test_missing_path_at_run_time_names_connection_and_rolls_back(product: Any) -> None:
    workflow = build(
        [
            ("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@x.io"}),
            ("ProductListNode", "list", {"filter": {"sku": "L-1"}}),
            ("OrderCreateNode", "o", {"quantity": 1}),
        ],
        [("list", "records.5.id", "o", "product_id"), ("c", "id", "o", "customer_id")],
    )
    before = db_state()
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow)
    error = info.value
    assert error.node_id == "o"
    assert error.node_type == "OrderCreateNode"
    message = str(error)
    assert "list.records.5.id -> o.product_id" in message
    assert "has no '5'" in message
    assert db_state() == before
    assert not Customer.objects.exists()


def test_path_into_null_result_fails_at_run_time(unchanged_db: Any) -> None:
    workflow = build(
        [
            ("ProductCreateNode", "p", LAMP),
            ("ProductReadNode", "missing", {"conditions": {"sku": "nope"}, "required": False}),
            ("OrderCreateNode", "o", {"quantity": 1}),
        ],
        [("missing", "id", "o", "product_id")],
    )
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow)
    assert info.value.node_id == "o"
    assert "missing.id -> o.product_id" in str(info.value)
    assert "NoneType" in str(info.value)
    assert not Product.objects.exists()


def test_path_through_a_scalar_fails_at_run_time(unchanged_db: Any) -> None:
    workflow = build(
        [
            ("ProductCreateNode", "p", LAMP),
            ("OrderCreateNode", "o", {"quantity": 1}),
        ],
        [("p", "id.value", "o", "product_id")],
    )
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow)
    assert "p.id.value -> o.product_id" in str(info.value)
    assert "has no 'value'" in str(info.value)
    assert not Product.objects.exists()


def test_connections_do_not_mutate_the_workflow(product: Any) -> None:
    a = Product.objects.create(name="A", sku="A", price="10.00")
    workflow = build(
        [
            ("ProductListNode", "src", {"filter": {"sku": {"$ne": "L-1"}}, "order_by": ["-id"], "limit": 1}),
            ("ProductUpdateNode", "upd", {"id": product.pk, "fields": {"name": "Renamed"}}),
        ],
        [("src", "records.0.price", "upd", "fields.price")],
    )
    snapshot = workflow.to_dict()
    LocalRuntime().execute(workflow)
    product.refresh_from_db()
    assert product.price == Decimal("10.00")
    assert workflow.node("upd").params == {"id": product.pk, "fields": {"name": "Renamed"}}
    assert workflow.to_dict() == snapshot

    Product.objects.create(name="B", sku="B", price="20.00")
    results, _ = LocalRuntime().execute(workflow)
    product.refresh_from_db()
    assert product.price == Decimal("20.00")
    assert results["upd"]["name"] == "Renamed"
    assert workflow.node("upd").params == {"id": product.pk, "fields": {"name": "Renamed"}}
    assert workflow.to_dict() == snapshot
    assert a.pk != product.pk
