"""Two tenants with overlapping primary keys and unique values: every node type run as alpha changes
and returns alpha's rows only; beta's (and the public schema's) rows never move and never appear."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from django_dataflow import LocalRuntime, NodeExecutionError
from django_dataflow.models import WorkflowRun
from shop.models import Customer, Order, Product
from tests.conftest import build
from tests.tenants.conftest import rows, schema_state

pytestmark = pytest.mark.postgres


def seed(schema: str, products: int) -> None:
    """The same skus, emails and references in every tenant (so ids overlap too); names say whose."""
    with schema_context(schema):
        customer = Customer.objects.create(
            name=f"{schema}-ada", email="ada@example.com", metadata={"t": schema}
        )
        made = [
            Product.objects.create(name=f"{schema}-p{i}", sku=f"S-{i}", price=f"{i}.00", stock=i)
            for i in range(1, products + 1)
        ]
        for i, product in enumerate(made[:2], start=1):
            Order.objects.create(product=product, customer=customer, quantity=i, reference=f"R-{i}")


@pytest.fixture
def seeded(tenants: tuple[str, ...]) -> None:
    seed("alpha", 3)
    seed("beta", 4)


Check = Callable[[dict[str, Any]], None]

# (nodes, connections, check of alpha's results and rows) per node type.
CASES: dict[str, tuple[list[tuple], list[tuple], Check]] = {
    "Create": (
        [("ProductCreateNode", "n", {"name": "alpha-new", "sku": "S-4", "price": "4"})], [],
        lambda r: r["n"]["id"] == 4,
    ),
    "Read": ([("ProductReadNode", "n", {"id": 1})], [], lambda r: r["n"]["name"] == "alpha-p1"),
    "Update": (
        [("ProductUpdateNode", "n", {"id": 2, "fields": {"stock": 99}})], [],
        lambda r: r["n"]["name"] == "alpha-p2" and r["n"]["stock"] == 99,
    ),
    "Delete": ([("OrderDeleteNode", "n", {"id": 1})], [], lambda r: r["n"]["deleted"] == 1),
    "List": (
        [("ProductListNode", "n", {"order_by": ["id"]})], [],
        lambda r: [p["name"] for p in r["n"]["records"]] == ["alpha-p1", "alpha-p2", "alpha-p3"],
    ),
    "Count": ([("ProductCountNode", "n", {})], [], lambda r: r["n"] == {"count": 3}),
    "Aggregate": (
        [("ProductAggregateNode", "n", {"pipeline": [{"$group": {"_id": None, "s": {"$sum": "$stock"}}}]})],
        [],
        lambda r: r["n"]["results"][0]["s"] == 6,
    ),
    "BulkCreate": (
        [("ProductBulkCreateNode", "n", {"data": [
            {"name": f"alpha-b{i}", "sku": f"S-{i}", "price": "1"} for i in range(4, 7)
        ]})], [],
        lambda r: r["n"] == {"created": 3},
    ),
    "BulkUpdate": (
        [("ProductBulkUpdateNode", "n", {"filter": {}, "fields": {"active": False}, "all": True})], [],
        lambda r: r["n"] == {"updated": 3},
    ),
    "BulkDelete": (
        [("OrderBulkDeleteNode", "n", {"filter": {}, "all": True})], [], lambda r: r["n"] == {"deleted": 2}
    ),
    "BulkUpsert": (
        [("ProductBulkUpsertNode", "n", {
            "data": [{"name": "alpha-up", "sku": "S-1", "price": "9"},
                     {"name": "alpha-up", "sku": "S-4", "price": "9"}],
            "conflict_on": ["sku"], "update_fields": ["name", "price"],
        })], [],
        lambda r: r["n"] == {"created": 1, "updated": 1},
    ),
    "connected Read -> Update": (
        [("ProductReadNode", "read", {"conditions": {"sku": "S-3"}}),
         ("ProductUpdateNode", "update", {"fields": {"stock": 33}})],
        [("read", "id", "update", "id")],
        lambda r: r["update"]["name"] == "alpha-p3" and r["update"]["stock"] == 33,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_node_type_touches_and_returns_only_its_tenants_rows(seeded: None, case: str) -> None:
    nodes, connections, check = CASES[case]
    others = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    alpha_before = schema_state("alpha")
    results, _ = LocalRuntime().execute(build(nodes, connections), tenant="alpha")
    assert check(results), results
    assert "beta" not in json.dumps(results)
    assert {schema: schema_state(schema) for schema in others} == others
    if case not in ("Read", "List", "Count", "Aggregate"):
        assert schema_state("alpha") != alpha_before
    assert connection.schema_name == "public"  # the scope is left as it was found


def test_the_same_workflow_for_each_tenant_keeps_each_tenants_rows(seeded: None) -> None:
    workflow = build(
        [("ProductBulkUpsertNode", "up", {"data": [{"name": "{{who}}", "sku": "S-1", "price": "7"}],
                                          "conflict_on": ["sku"], "update_fields": ["name"]}),
         ("ProductListNode", "list", {"filter": {"sku": "S-1"}})],
    )
    for schema in ("alpha", "beta"):
        LocalRuntime().execute(workflow, {"who": f"{schema}-upserted"}, tenant=schema)
    assert rows("alpha", "shop_product", "id, name") == [
        (1, "alpha-upserted"), (2, "alpha-p2"), (3, "alpha-p3")
    ]
    assert rows("beta", "shop_product", "id, name") == [
        (1, "beta-upserted"), (2, "beta-p2"), (3, "beta-p3"), (4, "beta-p4")
    ]


def test_a_failing_run_leaves_both_tenants_as_they_were(seeded: None) -> None:
    before = {schema: schema_state(schema) for schema in ("alpha", "beta", "public")}
    workflow = build([
        ("ProductCreateNode", "ok", {"name": "alpha-x", "sku": "S-8", "price": "1"}),
        ("ProductBulkUpdateNode", "ok2", {"filter": {}, "fields": {"stock": 0}, "all": True}),
        ("ProductCreateNode", "dup", {"name": "alpha-y", "sku": "S-1", "price": "1"}),  # unique in alpha
    ])
    with pytest.raises(NodeExecutionError) as caught:
        LocalRuntime(record=True).execute(workflow, tenant="alpha")
    assert caught.value.node_id == "dup"
    after = {schema: schema_state(schema) for schema in ("alpha", "beta", "public")}
    assert after["beta"] == before["beta"]
    assert after["public"] == before["public"]
    # alpha: only the failed run's record was added
    runs = rows("alpha", "django_dataflow_workflowrun", "status, tenant, error_node")
    assert runs == [("failed", "alpha", "dup")]
    with schema_context("alpha"):
        assert sorted(Product.objects.values_list("stock", flat=True)) == [1, 2, 3]


def test_run_records_live_in_the_tenants_schema_and_name_it(seeded: None) -> None:
    _, run_id = LocalRuntime(record=True).execute(build([("ProductCountNode", "c", {})]), tenant="beta")
    assert rows("beta", "django_dataflow_workflowrun", "run_id::text, tenant, status") == [
        (run_id, "beta", "succeeded")
    ]
    assert rows("alpha", "django_dataflow_workflowrun") == []
    assert rows("public", "django_dataflow_workflowrun") == []
    assert not WorkflowRun.objects.filter(pk=run_id).exists()  # the public table, from public
