"""The admin's trigger parts: enabled and follow-up definitions, the schedules inline (synced to
django-celery-beat), and the workflow graph (pure SVG function, definition and run pages)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.test import Client

from django_dataflow.admin.workflow_graph import layers, workflow_svg
from django_dataflow.models import DefinitionSchedule, RunStatus, WorkflowDefinition
from tests.conftest import db_state
from tests.test_admin import ONE_PRODUCT, definition_form, make_run, url

SVG = "{http://www.w3.org/2000/svg}"

CHAIN = {
    "nodes": [
        {"id": "a", "type": "ProductCreateNode", "params": {}},
        {"id": "b", "type": "ProductReadNode", "params": {}},
        {"id": "c", "type": "ProductUpdateNode", "params": {}},
        {"id": "side", "type": "ProductCountNode", "params": {}},
    ],
    "connections": [
        {"source": "a", "source_path": "id", "target": "b", "target_param": "id"},
        {"source": "b", "source_path": "id", "target": "c", "target_param": "id"},
        {"source": "a", "source_path": "id", "target": "c", "target_param": "fields.parent"},
    ],
}


def parse(svg: str) -> ET.Element:
    """The SVG as XML: proves it is well-formed (an unescaped id would break it)."""
    return ET.fromstring(svg)


def groups(root: ET.Element, css: str) -> list[ET.Element]:
    """The <g> elements whose class list holds css."""
    return [g for g in root.iter(f"{SVG}g") if css in (g.get("class") or "").split()]


# ------------------------------------------------------------------------------- the SVG function


def test_layers_follow_the_longest_path() -> None:
    # c is fed by a (layer 0) and b (layer 1), so it sits in layer 2; side has no inputs.
    assert layers(CHAIN) == [["a", "side"], ["b"], ["c"]]


def test_layers_survive_a_cycle_and_bad_records() -> None:
    cyclic = {"nodes": [{"id": "x"}, {"id": "y"}, {"id": "z"}], "connections": [
        {"source": "x", "target": "y"}, {"source": "y", "target": "x"}, {"source": "ghost", "target": "z"},
    ]}
    assert layers(cyclic) == [["z"], ["x", "y"]]
    assert layers(None) == [] and layers({"nodes": "nope"}) == []


def test_svg_draws_every_node_and_connection_with_labels() -> None:
    root = parse(workflow_svg(CHAIN))
    nodes = {g.get("data-node"): g for g in groups(root, "dataflow-node")}
    assert set(nodes) == {"a", "b", "c", "side"}
    assert "ProductReadNode" in "".join(nodes["b"].itertext())
    edges = {(g.get("data-source"), g.get("data-target")): "".join(g.itertext())
             for g in groups(root, "dataflow-edge")}
    assert set(edges) == {("a", "b"), ("b", "c"), ("a", "c")}
    assert "id -> fields.parent" in edges[("a", "c")]
    # Layers are columns: b right of a, c right of b; side below a in the first column.
    x = {k: float(g.find(f"{SVG}rect").get("x")) for k, g in nodes.items()}
    y = {k: float(g.find(f"{SVG}rect").get("y")) for k, g in nodes.items()}
    assert x["a"] == x["side"] < x["b"] < x["c"] and y["side"] > y["a"]


def test_hostile_node_ids_are_escaped() -> None:
    hostile = {"nodes": [{"id": "<script>alert(1)</script>", "type": '"><img src=x onerror=alert(1)>'},
                         {"id": "b&c", "type": "T"}],
               "connections": [{"source": "<script>alert(1)</script>", "source_path": "<b>",
                                "target": "b&c", "target_param": "x"}]}
    svg = str(workflow_svg(hostile))
    assert "<script>" not in svg and "<img" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    drawn = {g.get("data-node") for g in groups(root, "dataflow-node")}
    assert drawn == {"<script>alert(1)</script>", "b&c"}


def test_failed_node_is_highlighted_and_ran_nodes_show_seconds() -> None:
    root = parse(workflow_svg(CHAIN, failed_node="b", timings={"a": {"seconds": 0.25, "rows": 1}}))
    [failed] = groups(root, "dataflow-node-failed")
    assert failed.get("data-node") == "b" and failed.find(f"{SVG}rect").get("fill") == "#f8d7da"
    [ran] = groups(root, "dataflow-node-ran")
    assert ran.get("data-node") == "a" and "0.250 s" in "".join(ran.itertext())
    assert {g.get("data-node") for g in groups(root, "dataflow-node-plain")} == {"c", "side"}


def test_an_empty_workflow_is_an_empty_drawing() -> None:
    root = parse(workflow_svg({"nodes": []}))
    assert groups(root, "dataflow-node") == [] and root.get("width")


# ------------------------------------------------------------------------------- pages


def test_definition_page_draws_the_graph(admin_client: Client) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=ONE_PRODUCT)
    page = admin_client.get(url("django_dataflow_workflowdefinition_change", definition.pk)).content.decode()
    assert 'class="dataflow-chart dataflow-graph"' in page and 'data-node="create"' in page


def test_failed_run_page_highlights_the_failing_node(admin_client: Client) -> None:
    run = make_run(status=RunStatus.FAILED, workflow=CHAIN, error_node="b", error="boom",
                   node_stats={"a": {"seconds": 0.5, "rows": 1}})
    page = admin_client.get(url("django_dataflow_workflowrun_change", run.pk)).content.decode()
    assert 'class="dataflow-node dataflow-node-failed" data-node="b"' in page
    assert 'class="dataflow-node dataflow-node-ran" data-node="a"' in page


def test_a_succeeded_run_highlights_nothing(admin_client: Client) -> None:
    run = make_run(status=RunStatus.SUCCEEDED, workflow=CHAIN, node_stats={"a": {"seconds": 0.1}})
    page = admin_client.get(url("django_dataflow_workflowrun_change", run.pk)).content.decode()
    assert "dataflow-node-failed" not in page and 'data-node="side"' in page


# ------------------------------------------------------------------------------- enabled, follow-ups


def test_follow_ups_and_enabled_are_saved(admin_client: Client) -> None:
    WorkflowDefinition.objects.create(name="notify", workflow=ONE_PRODUCT)
    WorkflowDefinition.objects.create(name="alert", workflow=ONE_PRODUCT)
    response = admin_client.post(url("django_dataflow_workflowdefinition_add"), definition_form(
        name="report", workflow=json.dumps(ONE_PRODUCT), enabled="", on_success="notify, alert",
        on_failure="alert",
    ))
    assert response.status_code == 302
    saved = WorkflowDefinition.objects.get(name="report")
    assert (saved.enabled, saved.on_success, saved.on_failure) == (False, ["notify", "alert"], ["alert"])
    page = admin_client.get(url("django_dataflow_workflowdefinition_change", saved.pk)).content.decode()
    assert 'value="notify, alert"' in page


def test_unknown_follow_ups_are_refused_naming_them(admin_client: Client) -> None:
    WorkflowDefinition.objects.create(name="notify", workflow=ONE_PRODUCT)
    before = db_state()
    response = admin_client.post(url("django_dataflow_workflowdefinition_add"), definition_form(
        name="report", workflow=json.dumps(ONE_PRODUCT), on_success="notify, nofity", on_failure="ghost",
    ))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["on_success"] == ["unknown workflow definition(s): 'nofity'"]
    assert errors["on_failure"] == ["unknown workflow definition(s): 'ghost'"]
    assert db_state() == before


# ------------------------------------------------------------------------------- schedules inline


def schedule_row(**fields: Any) -> dict[str, Any]:
    """POST data of one new row of the schedules inline."""
    row = {"crontab": "", "interval_seconds": "", "inputs": "{}", "tenant": "", "overlap": "skip",
           "enabled": "on", **fields}
    return {"schedules-TOTAL_FORMS": "1", **{f"schedules-0-{k}": v for k, v in row.items() if v is not None}}


def periodic_tasks() -> Any:
    """django-celery-beat's PeriodicTask rows (imported late: the package is an optional extra)."""
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects


@pytest.mark.schedules
def test_a_schedule_saved_in_the_inline_writes_its_periodic_task(admin_client: Client) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=ONE_PRODUCT)
    change = url("django_dataflow_workflowdefinition_change", definition.pk)
    response = admin_client.post(change, definition_form(
        name="add_product", workflow=json.dumps(ONE_PRODUCT),
        **schedule_row(crontab="0 3 * * *", inputs='{"name": "Lamp", "sku": "L-1"}'),
    ))
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    schedule = DefinitionSchedule.objects.get(definition=definition)
    assert schedule.inputs == {"name": "Lamp", "sku": "L-1"}
    task = periodic_tasks().get(name=schedule.task_name)
    assert task.crontab.hour == "3" and task.enabled


@pytest.mark.schedules
def test_disabling_the_definition_in_the_admin_disables_its_tasks(admin_client: Client) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=ONE_PRODUCT)
    schedule = DefinitionSchedule.objects.create(definition=definition, interval_seconds=60)
    data = definition_form(name="add_product", workflow=json.dumps(ONE_PRODUCT), enabled="")
    data.update({"schedules-TOTAL_FORMS": "1", "schedules-INITIAL_FORMS": "1",
                 "schedules-0-id": str(schedule.pk), "schedules-0-definition": str(definition.pk),
                 "schedules-0-interval_seconds": "60", "schedules-0-inputs": "{}",
                 "schedules-0-overlap": "skip", "schedules-0-enabled": "on"})
    response = admin_client.post(url("django_dataflow_workflowdefinition_change", definition.pk), data)
    assert response.status_code == 302
    assert not periodic_tasks().get(name=schedule.task_name).enabled


@pytest.mark.schedules
@pytest.mark.parametrize(("fields", "field", "expected"), [
    ({"crontab": "61 * * * *"}, "crontab", "crontab '61 * * * *' is invalid"),
    ({"crontab": "0 3 * *"}, "crontab", "must have 5 fields"),
    ({"crontab": "0 3 * * *", "interval_seconds": "60"}, "crontab", "exactly one"),
    ({}, "crontab", "exactly one"),
    ({"interval_seconds": "0"}, "interval_seconds", "at least 1"),
    ({"interval_seconds": "60", "tenant": "acme", "all_tenants": "on"}, "tenant", "not both"),
    ({"interval_seconds": "60", "inputs": "[1, 2]"}, "inputs", "must be a JSON object"),
])
def test_invalid_schedules_are_form_errors_naming_the_field(
    admin_client: Client, fields: dict[str, str], field: str, expected: str,
) -> None:
    definition = WorkflowDefinition.objects.create(name="add_product", workflow=ONE_PRODUCT)
    before = db_state()
    change = url("django_dataflow_workflowdefinition_change", definition.pk)
    response = admin_client.post(change, definition_form(
        name="add_product", workflow=json.dumps(ONE_PRODUCT), **schedule_row(**fields),
    ))
    assert response.status_code == 200
    [errors] = response.context["inline_admin_formsets"][0].formset.errors
    assert any(expected in e for e in errors[field]), errors
    assert db_state() == before
    assert not periodic_tasks().filter(name__startswith="django_dataflow.schedule.").exists()
