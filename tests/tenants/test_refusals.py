"""What is refused before anything runs (unknown tenant, public runs of tenant-app models), where
each table lives, and the default tenant inside a request routed by django-tenants' middleware."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import schema_context

from django_dataflow import CeleryRuntime, LocalRuntime, tenancy
from django_dataflow.runtime.handle import RunHandle
from django_dataflow.tenancy import TenantError
from tests.conftest import build
from tests.tenants.conftest import TENANTS, rows, schema_state, schema_tables

pytestmark = pytest.mark.postgres

CREATE = [("ProductCreateNode", "p", {"name": "Lamp", "sku": "L-1", "price": "1"})]


def everything() -> dict[str, Any]:
    return {schema: schema_state(schema) for schema in ("public", *TENANTS)}


@pytest.fixture
def eager(settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}


@pytest.mark.parametrize(
    "tenant", ["nope", "public", "", "bad\x00name", "x" * 64, 'a"; DROP SCHEMA alpha; --']
)
@pytest.mark.parametrize("runtime", ["local", "local-recorded", "celery"])
def test_an_unknown_tenant_is_refused_before_anything_runs(
    tenants: Any, eager: None, tenant: str, runtime: str
) -> None:
    before = everything()
    with pytest.raises(TenantError):
        if runtime == "celery":
            CeleryRuntime().submit(build(CREATE), tenant=tenant)
        else:
            LocalRuntime(record=runtime == "local-recorded").execute(build(CREATE), tenant=tenant)
    assert everything() == before
    assert connection.schema_name == "public"


@pytest.mark.parametrize("runtime", ["local", "local-recorded", "celery"])
def test_a_tenant_apps_model_with_no_tenant_is_refused(tenants: Any, eager: None, runtime: str) -> None:
    before = everything()
    with pytest.raises(TenantError, match=r"node 'p' \(ProductCreateNode\) uses shop\.Product.*no tenant"):
        if runtime == "celery":
            CeleryRuntime().submit(build(CREATE))
        else:
            LocalRuntime(record=runtime == "local-recorded").execute(build(CREATE))
    assert everything() == before


def test_a_shared_model_runs_in_the_public_schema_without_tenant(tenants: Any) -> None:
    results, _ = LocalRuntime().execute(build([("ProbeCreateNode", "probe", {"label": "public"})]))
    assert (results["probe"]["schema"], results["probe"]["search_path"]) == ("public", "public")
    results, _ = LocalRuntime().execute(build([("ProbeCreateNode", "probe", {"label": "a"})]), tenant="alpha")
    assert results["probe"]["schema"] == "alpha"
    assert results["probe"]["search_path"].replace('"', "") == "alpha, public"
    assert rows("public", "probe_probe", "label") == [("public",)]
    assert rows("alpha", "probe_probe", "label") == [("a",)]


def test_registry_and_definitions_are_public_only_runs_are_in_both(tenants: Any) -> None:
    public, alpha = schema_tables("public"), schema_tables("alpha")
    for table in ("django_dataflow_registeredmodel", "django_dataflow_modelschemaversion",
                  "django_dataflow_workflowdefinition"):
        assert table in public
        assert table not in alpha
    assert "django_dataflow_workflowrun" in public
    assert "django_dataflow_workflowrun" in alpha
    assert "shop_product" in alpha
    assert "shop_product" not in public
    assert "customers_client" not in alpha


def test_a_request_routed_to_a_tenant_runs_there_by_default(tenants: Any) -> None:
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> JsonResponse:
        seen["current"] = tenancy.current_schema()
        results, _ = LocalRuntime().execute(build([("ProbeCreateNode", "probe", {"label": "request"})]))
        seen["results"] = results
        return JsonResponse({})

    request = RequestFactory().get("/", HTTP_HOST="beta.test")
    try:
        TenantMainMiddleware(view)(request)
    finally:
        connection.set_schema_to_public()
    assert seen["current"] == "beta"
    assert seen["results"]["probe"]["schema"] == "beta"
    assert rows("beta", "probe_probe", "label") == [("request",)]
    assert rows("public", "probe_probe") == []


def test_an_explicit_tenant_wins_over_the_connections_and_restores_it(tenants: Any) -> None:
    with schema_context("beta"):
        workflow = build([("ProbeCreateNode", "probe", {"label": "x"})])
        results, _ = LocalRuntime().execute(workflow, tenant="alpha")
        assert connection.schema_name == "beta"
        assert tenancy.current_schema() == "beta"
    assert results["probe"]["schema"] == "alpha"


def test_celery_handles_read_the_run_in_its_tenants_schema(
    tenants: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(build(CREATE), tenant="gamma")
    assert handle.tenant == "gamma"
    assert handle.wait(10)["p"]["sku"] == "L-1"
    assert handle.status() == "succeeded"
    assert RunHandle.for_run(handle.run_id, tenant="gamma").status() == "succeeded"
    assert rows("gamma", "django_dataflow_workflowrun", "tenant, status") == [("gamma", "succeeded")]
    assert rows("public", "django_dataflow_workflowrun") == []
    assert rows("gamma", "shop_product", "sku") == [("L-1",)]


def test_makemigrations_is_clean_with_tenants(tenants: Any) -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 on a missing migration
    assert "No changes detected" in out.getvalue()


def test_the_tenants_settings_pass_the_system_checks(tenants: Any) -> None:
    from django.core import checks

    from django_dataflow.checks import check_tenancy

    assert check_tenancy() == []
    found = {m.id for m in checks.run_checks(tags=["django_dataflow"])}
    assert not {i for i in found if i.startswith(("django_dataflow.E02", "django_dataflow.W02"))}
