"""The admin of stored model-change triggers: their list and form, the inline on a definition's
page, form errors naming the field, permissions, and a row saved there firing at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from django_dataflow.models import ModelTriggerRule, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers import stored
from shop.models import Customer
from tests.conftest import db_state
from tests.test_admin import definition_form, staff, url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forget_loaded_rows() -> Iterator[None]:
    """A flush or rollback between tests sends no signals: forget what was loaded."""
    stored.reset()
    yield
    stored.reset()


@pytest.fixture
def definition() -> WorkflowDefinition:
    """A saved definition ('audit', reads only)."""
    count = {"id": "count", "type": "ProductCountNode", "params": {}}
    return WorkflowDefinition.objects.create(name="audit", workflow={"nodes": [count]})


def rule_form(target: WorkflowDefinition, **fields: Any) -> dict[str, Any]:
    """POST data of the trigger page."""
    return {"model": "shop.Customer", "event": "created", "definition": str(target.pk),
            "inputs": "{}", "enabled": "on", **fields}


def test_the_pages_open_and_list_the_rows(admin_client: Client, definition: WorkflowDefinition) -> None:
    row = ModelTriggerRule.objects.create(model="shop.Customer", event="created", definition=definition)
    pages = ("django_dataflow_modeltriggerrule_changelist", "django_dataflow_modeltriggerrule_add")
    for page in [*map(url, pages), url("django_dataflow_modeltriggerrule_change", row.pk)]:
        assert admin_client.get(page).status_code == 200, page
    listing = admin_client.get(url("django_dataflow_modeltriggerrule_changelist")).content.decode()
    link = url("django_dataflow_workflowdefinition_change", definition.pk)
    assert f'<a href="{link}">audit</a>' in listing
    assert 'name="form-0-enabled"' in listing  # the enabled toggle, editable in the list
    add = admin_client.get(url("django_dataflow_modeltriggerrule_add")).content.decode()
    assert '<option value="shop.Customer">shop.Customer</option>' in add
    assert "auth.Group" not in add  # only models registered with django_dataflow are offered


def test_a_row_is_added_with_its_inputs(admin_client: Client, definition: WorkflowDefinition) -> None:
    response = admin_client.post(url("django_dataflow_modeltriggerrule_add"), rule_form(
        definition, event="updated", inputs='{"source": "admin"}', per_row="on",
    ))
    assert response.status_code == 302
    row = ModelTriggerRule.objects.get()
    assert (row.model, row.event, row.definition, row.inputs, row.per_row, row.enabled) == (
        "shop.Customer", "updated", definition, {"source": "admin"}, True, True,
    )


def test_the_enabled_toggle_of_the_list_saves(admin_client: Client, definition: WorkflowDefinition) -> None:
    row = ModelTriggerRule.objects.create(model="shop.Customer", event="created", definition=definition)
    response = admin_client.post(url("django_dataflow_modeltriggerrule_changelist"), {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(row.pk), "_save": "Save",
    })  # the enabled box left unticked
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.enabled is False


@pytest.mark.parametrize(("fields", "field", "expected"), [
    ({"model": "auth.Group"}, "model", "'auth.Group' is not registered with django_dataflow"),
    ({"model": "shop.Nope"}, "model", "'shop.Nope' is not an installed model"),
    ({"event": "saved"}, "event", "Select a valid choice"),
    ({"inputs": '{"pk": 3}'}, "inputs", "inputs may not set 'pk'"),
    ({"inputs": "[1]"}, "inputs", "must be a JSON object"),
    ({"definition": "9999"}, "definition", "Select a valid choice"),
])
def test_invalid_rows_are_form_errors_naming_the_field(
    admin_client: Client, definition: WorkflowDefinition, fields: dict[str, str], field: str, expected: str,
) -> None:
    before = db_state()
    response = admin_client.post(url("django_dataflow_modeltriggerrule_add"), rule_form(definition, **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(expected in e for e in errors[field]), errors
    assert db_state() == before


def test_the_definition_page_edits_its_triggers_inline(
    admin_client: Client, definition: WorkflowDefinition,
) -> None:
    change = url("django_dataflow_workflowdefinition_change", definition.pk)
    assert "model_triggers-TOTAL_FORMS" in admin_client.get(change).content.decode()
    data = definition_form(name="audit", workflow=json.dumps(definition.workflow))
    data.update({"model_triggers-TOTAL_FORMS": "1", "model_triggers-0-model": "shop.Customer",
                 "model_triggers-0-event": "deleted", "model_triggers-0-inputs": '{"why": "gone"}',
                 "model_triggers-0-enabled": "on"})
    response = admin_client.post(change, data)
    assert response.status_code == 302
    row = ModelTriggerRule.objects.get()
    assert (row.definition, row.event, row.inputs) == (definition, "deleted", {"why": "gone"})


def test_an_invalid_inline_row_is_a_form_error(admin_client: Client, definition: WorkflowDefinition) -> None:
    before = db_state()
    data = definition_form(name="audit", workflow=json.dumps(definition.workflow))
    data.update({"model_triggers-TOTAL_FORMS": "1", "model_triggers-0-model": "shop.Customer",
                 "model_triggers-0-event": "created", "model_triggers-0-inputs": '{"event": "x"}'})
    response = admin_client.post(url("django_dataflow_workflowdefinition_change", definition.pk), data)
    assert response.status_code == 200
    formsets = {f.formset.prefix: f.formset for f in response.context["inline_admin_formsets"]}
    [errors] = formsets["model_triggers"].errors
    assert "inputs may not set 'event'" in errors["inputs"][0]
    assert db_state() == before


def test_permissions_are_the_models_own(definition: WorkflowDefinition) -> None:
    row = ModelTriggerRule.objects.create(model="shop.Customer", event="created", definition=definition)
    viewer = staff("django_dataflow.view_modeltriggerrule")
    assert viewer.get(url("django_dataflow_modeltriggerrule_changelist")).status_code == 200
    assert viewer.get(url("django_dataflow_modeltriggerrule_add")).status_code == 403
    before = db_state()
    viewer.post(url("django_dataflow_modeltriggerrule_change", row.pk), rule_form(definition, enabled=""))
    assert db_state() == before  # viewing does not allow changing
    nobody = staff()
    assert nobody.get(url("django_dataflow_modeltriggerrule_changelist")).status_code == 403
    editor = staff("django_dataflow.add_modeltriggerrule", "django_dataflow.view_workflowdefinition")
    response = editor.post(url("django_dataflow_modeltriggerrule_add"),
                           rule_form(definition, event="updated"))
    assert response.status_code == 302 and ModelTriggerRule.objects.filter(event="updated").exists()


@pytest.mark.django_db(transaction=True)
def test_a_row_saved_in_the_admin_fires_from_its_commit_on(admin_client: Client, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    count = {"id": "count", "type": "ProductCountNode", "params": {}}
    definition = WorkflowDefinition.objects.create(name="audit", workflow={"nodes": [count]})
    response = admin_client.post(url("django_dataflow_modeltriggerrule_add"), rule_form(
        definition, inputs='{"source": "admin"}',
    ))
    assert response.status_code == 302
    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    [run] = WorkflowRun.objects.filter(definition="audit")
    assert run.inputs == {"model": "shop.Customer", "event": "created", "pk": customer.pk, "source": "admin"}
