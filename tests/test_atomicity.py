"""All or nothing: a failing node rolls back every write of the run; run recording."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import override_settings

from django_dataflow import LocalRuntime, NodeExecutionError, WorkflowValidationError
from django_dataflow.models import RunStatus, WorkflowRun
from shop.models import Customer, Order, Product
from tests.conftest import build, db_state

# Real commits and rollbacks: no test-wide transaction around these tests.
pytestmark = pytest.mark.django_db(transaction=True)

NODE_IDS = ["customer", "product", "order", "restock"]


def four_nodes(fail_at: int | None, fail_kind: str = "invalid") -> Any:
    """customer -> product -> order (connected to both) -> restock (update of the product)."""
    params: dict[str, dict[str, Any]] = {
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "product": {"name": "Lamp", "price": "19.99", "sku": "L-1"},
        "order": {"quantity": 2},
        "restock": {"fields": {"stock": 9}},
    }
    if fail_at is not None:
        node = NODE_IDS[fail_at]
        if fail_kind == "invalid":
            bad = {
                "customer": {"email": "not-an-email"},
                "product": {"price": "cheap"},
                "order": {"quantity": -1},
                "restock": {"fields": {"stock": "many"}},
            }[node]
        else:  # a constraint the database enforces (the nodes leave uniqueness to it)
            bad = {
                "customer": {"email": "taken@example.com"},
                "product": {"sku": "TAKEN"},
                "order": {"reference": "TAKEN"},
                "restock": {"fields": {"sku": "TAKEN"}},
            }[node]
        params[node] = {**params[node], **bad}
    return build(
        [
            ("CustomerCreateNode", "customer", params["customer"]),
            ("ProductCreateNode", "product", params["product"]),
            ("OrderCreateNode", "order", params["order"]),
            ("ProductUpdateNode", "restock", params["restock"]),
        ],
        [
            ("customer", "id", "order", "customer_id"),
            ("product", "id", "order", "product_id"),
            ("product", "id", "restock", "id"),
        ],
    )


@pytest.fixture
def existing() -> dict[str, Any]:
    """Committed rows that the failing variants collide with, and that must survive untouched."""
    product = Product.objects.create(name="Taken", sku="TAKEN", price="1.00", stock=1)
    customer = Customer.objects.create(name="Taken", email="taken@example.com")
    Order.objects.create(product=product, customer=customer, quantity=1, reference="TAKEN")
    return {"product": product, "customer": customer}


@pytest.mark.parametrize("fail_kind", ["invalid", "integrity"])
@pytest.mark.parametrize("fail_at", [0, 1, 2, 3], ids=NODE_IDS)
def test_failure_at_each_position_rolls_back_everything(
    fail_at: int, fail_kind: str, existing: dict[str, Any]
) -> None:
    workflow = four_nodes(fail_at, fail_kind)
    before = db_state()
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow)
    error = info.value
    assert db_state() == before
    assert Product.objects.count() == 1 and Customer.objects.count() == 1 and Order.objects.count() == 1
    assert not connection.in_atomic_block

    node_id = NODE_IDS[fail_at]
    assert error.node_id == node_id
    assert error.node_type == workflow.node(node_id).type
    assert f"node '{node_id}' ({error.node_type}) failed" in str(error)
    assert uuid.UUID(error.run_id)
    assert error.__cause__ is not None
    if fail_kind == "integrity":
        assert isinstance(error.__cause__, IntegrityError)
    else:
        assert isinstance(error.__cause__, WorkflowValidationError)
        field = {"customer": "email", "product": "price", "order": "quantity", "restock": "stock"}[node_id]
        assert field in str(error)


def test_each_failure_gets_its_own_run_id(existing: dict[str, Any]) -> None:
    ids = set()
    for _ in range(2):
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(four_nodes(3))
        ids.add(info.value.run_id)
    assert len(ids) == 2


def test_successful_workflow_commits_everything() -> None:
    results, run_id = LocalRuntime().execute(four_nodes(None))
    assert uuid.UUID(run_id)
    assert not connection.in_atomic_block
    # A second connection sees the rows: they were committed, not left in an open transaction.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT sku, stock FROM {Product._meta.db_table}")
            assert cursor.fetchall() == [("L-1", 9)]
    finally:
        other.close()
    product = Product.objects.get()
    assert (product.sku, product.price, product.stock) == ("L-1", Decimal("19.99"), 9)
    order = Order.objects.get()
    assert order.customer_id == results["customer"]["id"]
    assert order.product_id == product.pk
    assert results["restock"]["stock"] == 9
    assert WorkflowRun.objects.count() == 0


def test_failure_leaves_outer_transaction_usable(existing: dict[str, Any]) -> None:
    with transaction.atomic():
        Product.objects.create(name="Outer", sku="OUTER", price="3.00")
        with pytest.raises(NodeExecutionError):
            LocalRuntime().execute(four_nodes(3, "integrity"))
        assert Product.objects.filter(sku="OUTER").exists()
        assert not Product.objects.filter(sku="L-1").exists()
    assert Product.objects.filter(sku="OUTER").exists()


def test_nothing_is_recorded_by_default(existing: dict[str, Any]) -> None:
    LocalRuntime().execute(four_nodes(None))
    with pytest.raises(NodeExecutionError):
        LocalRuntime().execute(four_nodes(1))
    assert WorkflowRun.objects.count() == 0


def test_recorded_success() -> None:
    results, run_id = LocalRuntime(record=True).execute(four_nodes(None))
    run = WorkflowRun.objects.get()
    assert str(run.run_id) == run_id
    assert run.status == RunStatus.SUCCEEDED
    assert run.runtime == "local"
    assert run.results == results
    assert set(run.node_stats) == set(NODE_IDS)
    for stats in run.node_stats.values():
        assert stats["rows"] == 1
        assert stats["seconds"] >= 0
    assert run.error == "" and run.error_node == ""
    assert run.workflow == four_nodes(None).to_dict()
    assert run.started_at is not None and run.finished_at is not None
    assert run.duration is not None and run.duration >= 0
    assert run.attempts == 1


def test_recorded_failure_keeps_the_record_but_rolls_back_the_data(existing: dict[str, Any]) -> None:
    before = db_state()
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime(record=True).execute(four_nodes(2))
    after = db_state()
    run = WorkflowRun.objects.get()
    assert {k: v for k, v in after.items() if k != "django_dataflow.WorkflowRun"} == {
        k: v for k, v in before.items() if k != "django_dataflow.WorkflowRun"
    }
    assert str(run.run_id) == info.value.run_id
    assert run.status == RunStatus.FAILED
    assert run.error_node == "order"
    assert "quantity" in run.error
    assert run.error == str(info.value)
    assert run.results is None
    assert set(run.node_stats) == {"customer", "product"}  # the nodes that finished before the failure
    assert run.finished_at is not None


def test_record_local_runs_setting_turns_recording_on() -> None:
    with override_settings(DATAFLOW={"RECORD_LOCAL_RUNS": True}):
        _, run_id = LocalRuntime().execute(four_nodes(None))
        assert WorkflowRun.objects.get().run_id == uuid.UUID(run_id)
        # An explicit record=False wins over the setting.
        LocalRuntime(record=False).execute(build([("ProductCountNode", "c", {})]))
    assert WorkflowRun.objects.count() == 1


def test_read_only_workflow_runs_and_writes_nothing(existing: dict[str, Any]) -> None:
    workflow = build(
        [
            ("ProductListNode", "list", {"order_by": ["sku"]}),
            ("ProductCountNode", "count", {}),
            ("CustomerReadNode", "who", {"conditions": {"email": "taken@example.com"}}),
            ("OrderListNode", "orders", {}),
        ],
        [("who", "id", "orders", "filter.customer_id")],
    )
    assert workflow.writes is False
    before = db_state()
    results, _ = LocalRuntime().execute(workflow)
    assert db_state() == before
    assert results["count"] == {"count": 1}
    assert [r["sku"] for r in results["list"]["records"]] == ["TAKEN"]
    assert results["who"]["id"] == existing["customer"].pk
    assert results["orders"]["count"] == 1


def test_read_only_failure_raises_node_execution_error(existing: dict[str, Any]) -> None:
    workflow = build([("ProductReadNode", "missing", {"conditions": {"sku": "NOPE"}})])
    before = db_state()
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow)
    assert info.value.node_id == "missing"
    assert "no Product matches" in str(info.value)
    assert db_state() == before


def test_recorded_read_only_run() -> None:
    results, _ = LocalRuntime(record=True).execute(build([("ProductCountNode", "c", {})]))
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.results == results == {"c": {"count": 0}}
    assert run.node_stats["c"]["rows"] == 0
