"""Audit entries and metrics on real schemas: they name the tenant whose rows were written, and an
audit entry is stored beside those rows, in the tenant's own schema."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import DataflowError
from tests.conftest import build
from tests.tenants.conftest import TENANTS, rows, schema_state

pytestmark = pytest.mark.postgres

CREATE = [("ProductCreateNode", "p", {"name": "Lamp", "sku": "L-1", "price": "2.00"})]


@pytest.fixture
def audited(settings: Any, tenants: Any) -> None:
    """Every write audited."""
    settings.DATAFLOW = {**settings.DATAFLOW, "AUDIT": True}


def metric(name: str, **labels: str) -> float:
    """A sample's current value (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_audited_write_in_alpha_is_recorded_in_alpha_naming_it(audited: None) -> None:
    def entries_elsewhere() -> dict[str, list[Any]]:
        return {schema: rows(schema, "django_dataflow_auditentry") for schema in ("public", "beta", "gamma")}

    others = entries_elsewhere()
    _, run_id = LocalRuntime().execute(build(CREATE), tenant="alpha")
    columns = "tenant, model, action, run_id::text"
    [(tenant, model, action, run)] = rows("alpha", "django_dataflow_auditentry", columns)
    assert (tenant, model, action, run) == ("alpha", "shop.Product", "create", str(run_id))
    assert entries_elsewhere() == others
    assert others == {"public": [], "beta": [], "gamma": []}


def test_a_failed_audited_run_in_alpha_leaves_no_entry_anywhere(audited: None) -> None:
    failing = [*CREATE, ("ProductCreateNode", "again", {"name": "Lamp", "sku": "L-1", "price": "2.00"})]
    before = {schema: schema_state(schema) for schema in ("public", *TENANTS)}
    with pytest.raises(DataflowError):
        LocalRuntime().execute(build(failing), tenant="alpha")
    for schema in ("public", *TENANTS):
        assert rows(schema, "django_dataflow_auditentry") == [], schema
        if schema != "alpha":  # alpha keeps its failed run's record, nothing else
            assert schema_state(schema) == before[schema]
    assert rows("alpha", "shop_product") == []


def test_metrics_carry_the_tenant_label(tenants: Any) -> None:
    labels = {"node_type": "ProductCreateNode", "operation": "Create", "outcome": "ok"}
    before = {
        tenant: (
            metric("dataflow_workflow_runs_total", status="succeeded", tenant=tenant),
            metric("dataflow_node_executions_total", **labels, tenant=tenant),
            metric("dataflow_rows_written_total", operation="Create", model="shop.Product", tenant=tenant),
        )
        for tenant in ("alpha", "beta", "")
    }
    for sku in ("A-1", "A-2"):
        LocalRuntime().execute(build([("ProductCreateNode", "p", {"name": "A", "sku": sku, "price": "1"})]),
                               tenant="alpha")
    LocalRuntime().execute(build([("ProductCreateNode", "p", {"name": "B", "sku": "B-1", "price": "1"})]),
                           tenant="beta")
    after = {
        tenant: (
            metric("dataflow_workflow_runs_total", status="succeeded", tenant=tenant),
            metric("dataflow_node_executions_total", **labels, tenant=tenant),
            metric("dataflow_rows_written_total", operation="Create", model="shop.Product", tenant=tenant),
        )
        for tenant in ("alpha", "beta", "")
    }
    grown = {t: tuple(a - b for a, b in zip(after[t], before[t], strict=True)) for t in after}
    assert grown == {"alpha": (2, 2, 2), "beta": (1, 1, 1), "": (0, 0, 0)}
