"""The admin in a real browser: log in, open each page, save a definition (an invalid one is
refused naming its node), run it, see it succeed, and open the dashboard without console errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from django_dataflow import CeleryRuntime, WorkflowBuilder
from django_dataflow.models import RegisteredModel, WorkflowDefinition, WorkflowRun
from shop.models import Product
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALID = {"nodes": [{"id": "create", "type": "ProductCreateNode",
                    "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "12.00"}}]}
INVALID = {"nodes": [{"id": "make_lamp", "type": "ProductCreateNode", "params": {"nme": "Lamp"}}]}


def visit(page: Any, base: str, path: str) -> None:
    """Open a page and require a successful response."""
    response = page.goto(base + path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"


def test_every_admin_page_opens(admin_page: Any, live_server: Any) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=VALID)
    registered = RegisteredModel.objects.filter(app_label="shop").first()
    for path in [
        "/admin/django_dataflow/",
        "/admin/django_dataflow/registeredmodel/",
        f"/admin/django_dataflow/registeredmodel/{registered.pk}/change/" if registered else None,
        "/admin/django_dataflow/workflowdefinition/",
        "/admin/django_dataflow/workflowdefinition/add/",
        f"/admin/django_dataflow/workflowdefinition/{definition.pk}/change/",
        f"/admin/django_dataflow/workflowdefinition/{definition.pk}/run/",
        "/admin/django_dataflow/workflowrun/",
        "/admin/django_dataflow/workflowrun/dashboard/",
    ]:
        if path:
            visit(admin_page, live_server.url, path)
    visit(admin_page, live_server.url, "/admin/django_dataflow/")
    admin_page.click("text=Dashboard")
    assert admin_page.url.endswith("/admin/django_dataflow/workflowrun/dashboard/")
    assert admin_page.console_log.errors == []


def test_save_a_definition_run_it_and_see_it_succeed(admin_page: Any, live_server: Any) -> None:
    visit(admin_page, live_server.url, "/admin/django_dataflow/workflowdefinition/add/")
    admin_page.fill("#id_name", "add_product")
    admin_page.fill("#id_workflow", json.dumps(INVALID))
    admin_page.click("input[name=_save]")
    error = admin_page.locator(".field-workflow .errorlist").inner_text()
    assert "node 'make_lamp'" in error and "unknown param 'nme'" in error
    assert not WorkflowDefinition.objects.exists()

    admin_page.fill("#id_workflow", json.dumps(VALID))
    admin_page.click("input[name=_continue]")
    assert "was added successfully" in admin_page.locator(".messagelist").inner_text()
    definition = WorkflowDefinition.objects.get(name="add_product")

    admin_page.click("text=Run now")
    admin_page.fill("#id_input__name", "Desk")
    admin_page.fill("#id_input__sku", "D-100")
    admin_page.click("input[name=_run]")
    run = WorkflowRun.objects.get(definition=definition.name)
    assert admin_page.url.endswith(f"/admin/django_dataflow/workflowrun/{run.pk}/change/")
    assert admin_page.locator(".field-status .readonly").inner_text() == "Succeeded"
    assert "ProductCreateNode" in admin_page.locator(".field-node_timings").inner_text()
    assert Product.objects.get(sku="D-100").name == "Desk"
    assert admin_page.console_log.errors == []


def test_rerun_a_failed_run_from_its_page(admin_page: Any, live_server: Any) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=VALID)
    Product.objects.create(name="Taken", sku="T-1", price="1")
    handle = CeleryRuntime().submit(definition, {"name": "Desk", "sku": "T-1"})
    assert WorkflowRun.objects.get(pk=handle.run_id).status == "failed"  # sku is unique
    Product.objects.filter(sku="T-1").delete()

    visit(admin_page, live_server.url, f"/admin/django_dataflow/workflowrun/{handle.run_id}/change/")
    assert admin_page.locator(".field-error_node .readonly").inner_text() == "create"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin_page.screenshot(path=str(ARTIFACTS / "admin-failed-run.png"))
    admin_page.click("form.dataflow-run-action button")
    assert "re-run as" in admin_page.locator(".messagelist").inner_text()
    rerun = WorkflowRun.objects.exclude(pk=handle.run_id).get()
    assert (rerun.status, rerun.definition) == ("succeeded", "add_product")
    assert Product.objects.get(sku="T-1").name == "Desk"
    assert admin_page.console_log.errors == []


def test_dashboard_renders_without_console_errors(
    admin_page: Any, live_server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_dataflow import metrics

    # Prometheus counters are per process: the rate depends on what earlier tests read.
    monkeypatch.setattr(metrics, "cache_hit_rate", lambda: 0.5)
    WorkflowDefinition.objects.create(name="add_product", workflow=VALID)
    runtime = CeleryRuntime()
    for i in range(3):
        runtime.execute(VALID, inputs={"name": f"P{i}", "sku": f"S-{i}"})
    failing = WorkflowBuilder()
    failing.add_node("ProductReadNode", "missing", {"id": 999_999})
    handle = runtime.submit(failing.build())
    WorkflowRun.objects.filter(pk=handle.run_id).update(definition="lookup")

    visit(admin_page, live_server.url, "/admin/django_dataflow/workflowrun/dashboard/?days=7")
    charts = admin_page.locator("svg.dataflow-chart")
    assert charts.count() == 3
    for index in range(3):
        assert charts.nth(index).is_visible()
    assert admin_page.locator("#kpi-runs strong").inner_text() == "4"
    assert admin_page.locator("#kpi-cache-hit-rate strong").inner_text() == "50.0%"
    assert "lookup" in admin_page.locator("#failing-definitions").inner_text()
    assert admin_page.console_log.errors == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "admin-dashboard.png"
    admin_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\ndashboard screenshot: {shot}")


def test_failed_run_page_draws_the_graph_with_the_failed_node(admin_page: Any, live_server: Any) -> None:
    two = WorkflowBuilder()
    two.add_node("ProductCreateNode", "create", {"name": "Lamp", "sku": "G-1", "price": "1"})
    two.add_node("ProductCreateNode", "copy", {"name": "Copy", "price": "1"})
    two.add_connection("create", "sku", "copy", "sku")  # the same sku again: unique, so copy fails
    definition = WorkflowDefinition.objects.create(name="copy_product", workflow=two.build().to_dict())
    handle = CeleryRuntime().submit(definition, {})
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.error_node) == ("failed", "copy")

    visit(admin_page, live_server.url, f"/admin/django_dataflow/workflowrun/{handle.run_id}/change/")
    graph = admin_page.locator("svg.dataflow-graph")
    assert graph.is_visible()
    failed = graph.locator("g.dataflow-node-failed")
    assert failed.count() == 1 and failed.get_attribute("data-node") == "copy"
    assert failed.locator("rect").get_attribute("fill") == "#f8d7da"
    assert graph.locator('g.dataflow-node-ran[data-node="create"]').is_visible()
    assert "sku -> sku" in (graph.locator("g.dataflow-edge text").text_content() or "")
    assert admin_page.console_log.errors == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "admin-run-graph.png"
    graph.scroll_into_view_if_needed()
    admin_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
