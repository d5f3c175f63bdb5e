"""manage.py dataflow_run --tenant / --all-tenants against real schemas."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from django_dataflow import WorkflowBuilder
from django_dataflow.models import WorkflowDefinition
from shop.models import Product
from tests.tenants.conftest import rows, schema_state

pytestmark = pytest.mark.postgres


def workflow_file(tmp_path: Path) -> Path:
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "product", {"name": "{{name}}", "sku": "C-1", "price": "3"})
    builder.add_node("ProductCountNode", "count", {})
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(builder.build().to_dict()))
    return path


def command(*args: str) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command("dataflow_run", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as exc:
        return out.getvalue(), err.getvalue() + str(exc), exc.returncode
    return out.getvalue(), err.getvalue(), 0


def test_tenant_option_runs_in_that_schema(tenants: Any, tmp_path: Path) -> None:
    out, _, code = command(str(workflow_file(tmp_path)), "--tenant", "beta", "--input", "name=Lamp", "--json")
    assert code == 0
    outcome = json.loads(out)
    assert (outcome["tenant"], outcome["status"]) == ("beta", "succeeded")
    assert outcome["results"]["count"] == {"count": 1}
    assert rows("beta", "shop_product", "sku") == [("C-1",)]
    assert rows("alpha", "shop_product") == []


def test_an_unknown_tenant_exits_2(tenants: Any, tmp_path: Path) -> None:
    before = {s: schema_state(s) for s in ("public", *tenants)}
    _, err, code = command(str(workflow_file(tmp_path)), "--tenant", "nope", "--input", "name=Lamp")
    assert code == 2
    assert "unknown tenant 'nope'" in err
    assert {s: schema_state(s) for s in ("public", *tenants)} == before


def test_no_tenant_for_a_tenant_app_model_exits_2(tenants: Any, tmp_path: Path) -> None:
    _, err, code = command(str(workflow_file(tmp_path)), "--input", "name=Lamp")
    assert code == 2
    assert "no tenant" in err


def test_all_tenants_one_atomic_run_each_failures_reported_others_committed(tenants: Any) -> None:
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "product", {"name": "Lamp", "sku": "C-1", "price": "3"})
    builder.add_node("ProductCreateNode", "second", {"name": "Lamp 2", "sku": "C-2", "price": "3"})
    WorkflowDefinition.objects.create(name="two_lamps", workflow=builder.build().to_dict())  # public
    with schema_context("beta"):
        Product.objects.create(name="Taken", sku="C-2", price="1")  # beta's second node fails
    beta_before = schema_state("beta")
    out, err, code = command("two_lamps", "--all-tenants", "--json")
    assert code == 1
    report = {o["tenant"]: o for o in json.loads(out)["tenants"]}
    assert set(report) == set(tenants)
    assert report["alpha"]["status"] == report["gamma"]["status"] == "succeeded"
    assert (report["beta"]["status"], report["beta"]["node_id"]) == ("failed", "second")
    assert "1 of 3 runs failed" in err
    assert rows("alpha", "shop_product", "sku") == [("C-1",), ("C-2",)]
    assert rows("gamma", "shop_product", "sku") == [("C-1",), ("C-2",)]
    assert schema_state("beta") == beta_before  # the failed tenant's run rolled back whole


def test_all_tenants_text_report(tenants: Any, tmp_path: Path) -> None:
    out, _, code = command(str(workflow_file(tmp_path)), "--all-tenants", "--input", "name=Lamp")
    assert code == 0
    for name in tenants:
        assert f"(tenant {name}) succeeded" in out


def test_async_wait_for_a_tenant(tenants: Any, tmp_path: Path, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    out, _, code = command(str(workflow_file(tmp_path)), "--tenant", "gamma", "--wait", "--input", "name=L",
                           "--json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["status"] == "succeeded"
    assert rows("gamma", "django_dataflow_workflowrun", "run_id::text, tenant, status") == [
        (outcome["run_id"], "gamma", "succeeded")
    ]
