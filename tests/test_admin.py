"""The Django admin: pages, the workflow editor's validation, the run/re-run/cancel actions and
their permission refusals, and the dashboard's numbers against runs with known timings."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_dataflow import conf
from django_dataflow.admin import charts, stats
from django_dataflow.admin.forms import INPUT_PREFIX
from django_dataflow.models import RegisteredModel, RunStatus, WorkflowDefinition, WorkflowRun
from shop.models import Product
from tests.conftest import db_state

pytestmark = pytest.mark.django_db

ONE_PRODUCT = {
    "nodes": [{"id": "create", "type": "ProductCreateNode",
               "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "9.50"}}],
}


@pytest.fixture(autouse=True)
def eager(settings: Any) -> None:
    """CeleryRuntime performs runs in this process (no broker), whatever the environment says.

    APPLICATION is the one migrate recorded the registry rows under: overridden settings have no
    SETTINGS_MODULE to derive it from.
    """
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "APPLICATION": "testproject"}


@pytest.fixture
def definition() -> WorkflowDefinition:
    """A saved definition taking the inputs name and sku."""
    return WorkflowDefinition.objects.create(name="add_product", workflow=ONE_PRODUCT)


def staff(*codenames: str) -> Client:
    """A client logged in as a staff user holding exactly these permissions ('app.codename')."""
    user = User.objects.create_user(f"staff{User.objects.count()}", password="x", is_staff=True)
    for name in codenames:
        app_label, codename = name.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        user.user_permissions.add(permission)
    client = Client()
    client.force_login(user)
    return client


def texts(response: Any) -> list[str]:
    """The admin messages a response carries."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def url(name: str, *args: Any) -> str:
    """reverse() of an admin URL name."""
    return reverse(f"admin:{name}", args=args)


def definition_form(**fields: Any) -> dict[str, Any]:
    """POST data of the definition page: enabled, no follow-ups, empty schedules and triggers inlines."""
    return {
        "description": "", "enabled": "on", "on_success": "", "on_failure": "",
        "schedules-TOTAL_FORMS": "0", "schedules-INITIAL_FORMS": "0",
        "schedules-MIN_NUM_FORMS": "0", "schedules-MAX_NUM_FORMS": "1000",
        "model_triggers-TOTAL_FORMS": "0", "model_triggers-INITIAL_FORMS": "0", **fields,
    }


def make_run(**fields: Any) -> WorkflowRun:
    """A WorkflowRun row with chosen fields (created_at included, which auto_now_add would set)."""
    created_at = fields.pop("created_at", None)
    fields.setdefault("workflow", ONE_PRODUCT)
    fields.setdefault("inputs", {"name": "Lamp", "sku": "L-9"})
    run = WorkflowRun.objects.create(**fields)
    if created_at is not None:
        WorkflowRun.objects.filter(pk=run.pk).update(created_at=created_at)
        run.refresh_from_db()
    return run


# ------------------------------------------------------------------------------------------ pages


def test_every_admin_page_opens(admin_client: Client, definition: WorkflowDefinition) -> None:
    run = make_run(status=RunStatus.SUCCEEDED, node_stats={"create": {"seconds": 0.01, "rows": 1}},
                   results={"create": {"id": 1, "name": "Lamp"}})
    registered = RegisteredModel.objects.get(app_label="shop", model_name="Product")
    pages = [
        url("app_list", "django_dataflow"),
        url("django_dataflow_registeredmodel_changelist"),
        url("django_dataflow_registeredmodel_change", registered.pk),
        url("django_dataflow_workflowdefinition_changelist"),
        url("django_dataflow_workflowdefinition_add"),
        url("django_dataflow_workflowdefinition_change", definition.pk),
        url("django_dataflow_workflowdefinition_run", definition.pk),
        url("django_dataflow_workflowrun_changelist"),
        url("django_dataflow_workflowrun_change", run.pk),
        url("django_dataflow_dashboard"),
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page


def test_app_index_and_run_list_link_to_the_dashboard(admin_client: Client) -> None:
    dashboard = url("django_dataflow_dashboard")
    assert dashboard in admin_client.get(url("app_list", "django_dataflow")).content.decode()
    assert dashboard in admin_client.get(url("django_dataflow_workflowrun_changelist")).content.decode()


def test_the_dashboard_link_needs_view_permission_on_runs() -> None:
    client = staff("django_dataflow.view_workflowdefinition")
    page = client.get(url("app_list", "django_dataflow")).content.decode()
    assert url("django_dataflow_dashboard") not in page


def test_registered_model_page_shows_fields_node_types_versions_and_drift(admin_client: Client) -> None:
    registered = RegisteredModel.objects.get(app_label="shop", model_name="Product")
    page = admin_client.get(url("django_dataflow_registeredmodel_change", registered.pk)).content.decode()
    assert "ProductBulkUpsertNode" in page
    assert "sku" in page and "DecimalField" in page
    assert registered.schema_hash in page  # the version inline
    assert "dataflow-drift-ok" in page


def test_registered_model_page_reports_drift_from_code(admin_client: Client) -> None:
    registered = RegisteredModel.objects.get(app_label="shop", model_name="Product")
    RegisteredModel.objects.filter(pk=registered.pk).update(schema_hash="0" * 64)
    page = admin_client.get(url("django_dataflow_registeredmodel_change", registered.pk)).content.decode()
    assert "dataflow-drift-drift" in page
    assert "differs from this application&#x27;s code" in page


def test_registry_and_runs_are_read_only(admin_client: Client) -> None:
    run = make_run(status=RunStatus.FAILED)
    registered = RegisteredModel.objects.first()
    assert admin_client.get(url("django_dataflow_workflowrun_add")).status_code == 403
    assert admin_client.get(url("django_dataflow_registeredmodel_add")).status_code == 403
    deleted = admin_client.post(url("django_dataflow_workflowrun_delete", run.pk), {"post": "yes"})
    assert deleted.status_code == 403
    before = db_state()
    admin_client.post(url("django_dataflow_workflowrun_change", run.pk), {"status": "succeeded"})
    admin_client.post(url("django_dataflow_registeredmodel_change", registered.pk), {"version": 99})
    assert db_state() == before


def test_run_page_shows_node_timings_and_pretty_results(admin_client: Client) -> None:
    run = make_run(status=RunStatus.SUCCEEDED, node_stats={"create": {"seconds": 0.25, "rows": 1}},
                   results={"create": {"id": 7, "name": "<Lamp>"}})
    page = admin_client.get(url("django_dataflow_workflowrun_change", run.pk)).content.decode()
    assert "<td>create</td><td>ProductCreateNode</td><td>0.250000</td><td>1</td>" in page
    assert '&quot;name&quot;: &quot;&lt;Lamp&gt;&quot;' in page  # indented JSON, escaped
    assert '{\n    &quot;id&quot;: 7' in page


def test_run_list_filters_by_status_tenant_definition_and_date(admin_client: Client) -> None:
    first = make_run(status=RunStatus.FAILED, tenant="acme", definition="nightly")
    make_run(status=RunStatus.SUCCEEDED)
    changelist = url("django_dataflow_workflowrun_changelist")
    page = admin_client.get(changelist).content.decode()
    for filter_title in ("By status", "By tenant", "By definition", "By created at"):
        assert filter_title in page
    filtered = admin_client.get(changelist, {"status__exact": "failed", "tenant": "acme"})
    assert filtered.context["cl"].result_count == 1
    # The runs' own day, not the clock's: a run made just before midnight is not "today" after it.
    midnight = timezone.make_aware(dt.datetime.combine(timezone.localdate(first.created_at), dt.time.min))
    today = admin_client.get(changelist, {"created_at__gte": str(midnight)})
    assert today.context["cl"].result_count == 2


def list_queries(client: Client, name: str) -> int:
    """Queries one changelist page takes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(name)).status_code == 200
    return len(queries)


def test_lists_take_the_same_queries_for_2_rows_and_for_20(admin_client: Client) -> None:
    def add(count: int) -> None:
        for _ in range(count):
            name = f"d{WorkflowDefinition.objects.count()}"
            WorkflowDefinition.objects.create(name=name, workflow=ONE_PRODUCT)
            make_run(status=RunStatus.FAILED, definition=name)

    add(2)
    few = [list_queries(admin_client, n) for n in ("django_dataflow_workflowrun_changelist",
                                                   "django_dataflow_workflowdefinition_changelist")]
    add(18)
    many = [list_queries(admin_client, n) for n in ("django_dataflow_workflowrun_changelist",
                                                    "django_dataflow_workflowdefinition_changelist")]
    assert many == few
    runs = admin_client.get(url("django_dataflow_workflowrun_changelist")).content.decode()
    definition = WorkflowDefinition.objects.get(name="d0")
    assert f'<a href="{url("django_dataflow_workflowdefinition_change", definition.pk)}">d0</a>' in runs
    definitions = admin_client.get(url("django_dataflow_workflowdefinition_changelist")).content.decode()
    last = WorkflowRun.objects.get(definition="d0")
    assert f'<a href="{url("django_dataflow_workflowrun_change", last.pk)}">Failed</a>' in definitions


# ------------------------------------------------------------------------------ definition editor


def test_change_form_shows_the_workflow_pretty_printed(
    admin_client: Client, definition: WorkflowDefinition,
) -> None:
    page = admin_client.get(url("django_dataflow_workflowdefinition_change", definition.pk)).content.decode()
    # Indented two spaces per level (key order is the database's: jsonb sorts keys).
    assert "\n  &quot;nodes&quot;: [\n    {\n      &quot;id&quot;: &quot;create&quot;," in page
    assert url("django_dataflow_workflowdefinition_run", definition.pk) in page


def test_a_valid_definition_is_saved(admin_client: Client) -> None:
    response = admin_client.post(
        url("django_dataflow_workflowdefinition_add"),
        definition_form(name="add_product", workflow=json.dumps(ONE_PRODUCT)),
    )
    assert response.status_code == 302
    saved = WorkflowDefinition.objects.get(name="add_product")
    assert saved.build().input_names == {"name", "sku"}


def test_an_invalid_definition_is_refused_naming_the_node(admin_client: Client) -> None:
    bad = {"nodes": [{"id": "make_lamp", "type": "ProductCreateNode", "params": {"nme": "Lamp"}}]}
    before = db_state()
    response = admin_client.post(
        url("django_dataflow_workflowdefinition_add"),
        definition_form(name="broken", workflow=json.dumps(bad)),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["workflow"]
    assert any("node 'make_lamp'" in e and "unknown param 'nme'" in e for e in errors)
    assert db_state() == before


def test_an_unknown_node_type_is_refused_on_change(
    admin_client: Client, definition: WorkflowDefinition,
) -> None:
    bad = {"nodes": [{"id": "ghost", "type": "GhostCreateNode"}]}
    response = admin_client.post(
        url("django_dataflow_workflowdefinition_change", definition.pk),
        definition_form(name="add_product", workflow=json.dumps(bad)),
    )
    assert response.status_code == 200
    assert "node &#x27;ghost&#x27;" in response.content.decode()
    definition.refresh_from_db()
    assert definition.workflow["nodes"][0]["id"] == "create" and definition.version == 1


def test_text_that_is_not_json_is_refused(admin_client: Client) -> None:
    response = admin_client.post(
        url("django_dataflow_workflowdefinition_add"),
        definition_form(name="broken", workflow="{nodes: ["),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["workflow"] == ["Enter a valid JSON."]
    assert not WorkflowDefinition.objects.exists()


# ------------------------------------------------------------------------------------- run now


def test_run_form_has_a_field_per_input(admin_client: Client, definition: WorkflowDefinition) -> None:
    form = admin_client.get(url("django_dataflow_workflowdefinition_run", definition.pk)).context["form"]
    assert sorted(form.fields) == [INPUT_PREFIX + "name", INPUT_PREFIX + "sku"]


def test_run_now_submits_through_celery_and_the_run_succeeds(
    admin_client: Client, definition: WorkflowDefinition, django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
            INPUT_PREFIX + "name": "Desk", INPUT_PREFIX + "sku": "D-1",
        })
    run = WorkflowRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("django_dataflow_workflowrun_change", run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.runtime == "celery-eager" or run.runtime.startswith("celery")
    assert run.definition == "add_product" and run.definition_version == 1
    assert run.user_id == str(response.wsgi_request.user.pk)
    assert Product.objects.get().name == "Desk"
    assert any("was submitted" in m for m in texts(response))


def test_the_run_now_action_opens_the_run_form(admin_client: Client, definition: WorkflowDefinition) -> None:
    response = admin_client.post(url("django_dataflow_workflowdefinition_changelist"), {
        "action": "run_now", "_selected_action": [definition.pk],
    })
    assert response.status_code == 302
    assert response["Location"] == url("django_dataflow_workflowdefinition_run", definition.pk)


def test_the_run_now_action_wants_one_definition(
    admin_client: Client, definition: WorkflowDefinition,
) -> None:
    other = WorkflowDefinition.objects.create(name="other", workflow=ONE_PRODUCT)
    response = admin_client.post(url("django_dataflow_workflowdefinition_changelist"), {
        "action": "run_now", "_selected_action": [definition.pk, other.pk],
    }, follow=True)
    assert "Select exactly one definition to run." in texts(response)
    assert not WorkflowRun.objects.exists()


def test_run_now_without_the_run_permission_is_refused(definition: WorkflowDefinition) -> None:
    client = staff("django_dataflow.view_workflowdefinition", "shop.add_product")
    before = db_state()
    response = client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
        INPUT_PREFIX + "name": "Desk", INPUT_PREFIX + "sku": "D-1",
    }, follow=True)
    assert "Refused: run needs the permission 'django_dataflow.run_workflowdefinition'." in texts(response)
    assert db_state() == before


def test_run_now_without_the_nodes_model_permission_is_refused(definition: WorkflowDefinition) -> None:
    client = staff("django_dataflow.view_workflowdefinition", "django_dataflow.run_workflowdefinition")
    before = db_state()
    response = client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
        INPUT_PREFIX + "name": "Desk", INPUT_PREFIX + "sku": "D-1",
    }, follow=True)
    [message] = texts(response)
    assert "node 'create' (ProductCreateNode) needs permission 'shop.add_product'" in message
    assert db_state() == before


def test_run_now_with_both_permissions_runs(
    definition: WorkflowDefinition, django_capture_on_commit_callbacks: Any,
) -> None:
    client = staff("django_dataflow.view_workflowdefinition", "django_dataflow.run_workflowdefinition",
                   "shop.add_product")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
            INPUT_PREFIX + "name": "Desk", INPUT_PREFIX + "sku": "D-1",
        })
    assert WorkflowRun.objects.get().status == RunStatus.SUCCEEDED


def test_a_failing_run_is_recorded_failed_naming_the_node(
    admin_client: Client, definition: WorkflowDefinition, django_capture_on_commit_callbacks: Any,
) -> None:
    Product.objects.create(name="Lamp", sku="D-1", price="1")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
            INPUT_PREFIX + "name": "Desk", INPUT_PREFIX + "sku": "D-1",
        })
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and run.error_node == "create"
    assert Product.objects.count() == 1


def test_inputs_the_runtime_refuses_are_form_errors(
    admin_client: Client, definition: WorkflowDefinition, settings: Any,
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_PARAMS_BYTES": 200}
    before = db_state()
    response = admin_client.post(url("django_dataflow_workflowdefinition_run", definition.pk), {
        INPUT_PREFIX + "name": "x" * 500, INPUT_PREFIX + "sku": "D-1",
    })
    assert response.status_code == 200
    [error] = response.context["form"].non_field_errors()
    assert "MAX_PARAMS_BYTES" in error
    assert db_state() == before


def test_row_inputs_are_json_lists(admin_client: Client) -> None:
    bulk = WorkflowDefinition.objects.create(name="load", workflow={
        "nodes": [{"id": "load", "type": "ProductBulkCreateNode", "params": {"data": "{{rows}}"}}],
    })
    before = db_state()
    response = admin_client.post(url("django_dataflow_workflowdefinition_run", bulk.pk), {
        INPUT_PREFIX + "rows": '{"name": "not a list"}',
    })
    assert response.status_code == 200
    assert response.context["form"].errors[INPUT_PREFIX + "rows"] == ["Enter a JSON list of rows."]
    assert db_state() == before


# ----------------------------------------------------------------------------- re-run and cancel


def failed_run() -> WorkflowRun:
    """A failed run of ONE_PRODUCT from the add_product definition."""
    return make_run(status=RunStatus.FAILED, definition="add_product", definition_version=3,
                    error="node 'create' (ProductCreateNode) failed: boom", error_node="create")


def test_rerun_submits_the_same_workflow_and_inputs(
    admin_client: Client, django_capture_on_commit_callbacks: Any,
) -> None:
    old = failed_run()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("django_dataflow_workflowrun_changelist"), {
            "action": "rerun", "_selected_action": [old.pk],
        }, follow=True)
    new = WorkflowRun.objects.exclude(pk=old.pk).get()
    assert new.status == RunStatus.SUCCEEDED, new.error
    assert (new.definition, new.definition_version, new.inputs) == ("add_product", 3, old.inputs)
    assert Product.objects.get().sku == "L-9"
    assert f"Run {old.pk} re-run as {new.pk}." in texts(response)


def test_run_pages_offer_the_action_their_status_allows(admin_client: Client) -> None:
    pages = {
        status: admin_client.get(url("django_dataflow_workflowrun_change", make_run(status=status).pk))
        .content.decode()
        for status in (RunStatus.FAILED, RunStatus.PENDING, RunStatus.SUCCEEDED)
    }
    assert 'value="rerun"' in pages["failed"] and 'value="cancel"' not in pages["failed"]
    assert 'value="cancel"' in pages["pending"] and 'value="rerun"' not in pages["pending"]
    assert "value=\"rerun\"" not in pages["succeeded"] and "value=\"cancel\"" not in pages["succeeded"]


def test_rerun_refuses_runs_that_did_not_fail(admin_client: Client) -> None:
    done = make_run(status=RunStatus.SUCCEEDED)
    before = db_state()
    response = admin_client.post(url("django_dataflow_workflowrun_changelist"), {
        "action": "rerun", "_selected_action": [done.pk],
    }, follow=True)
    assert f"Run {done.pk} is succeeded; only failed runs are re-run." in texts(response)
    assert db_state() == before


@pytest.mark.parametrize(("perms", "expected"), [
    (("django_dataflow.view_workflowrun", "shop.add_product"),
     "needs the permission 'django_dataflow.rerun_workflowrun'"),
    (("django_dataflow.view_workflowrun", "django_dataflow.rerun_workflowrun"),
     "node 'create' (ProductCreateNode) needs permission 'shop.add_product'"),
])
def test_rerun_refusals_leave_the_database_unchanged(perms: tuple[str, ...], expected: str) -> None:
    old = failed_run()
    client = staff(*perms)
    before = db_state()
    response = client.post(url("django_dataflow_workflowrun_changelist"), {
        "action": "rerun", "_selected_action": [old.pk],
    }, follow=True)
    [message] = texts(response)
    assert expected in message
    assert db_state() == before


def test_cancel_cancels_a_pending_run(admin_client: Client) -> None:
    pending = make_run(status=RunStatus.PENDING, runtime="celery-eager")
    response = admin_client.post(url("django_dataflow_workflowrun_changelist"), {
        "action": "cancel", "_selected_action": [pending.pk],
    }, follow=True)
    pending.refresh_from_db()
    assert pending.status == RunStatus.CANCELLED
    assert f"Run {pending.pk} was cancelled." in texts(response)


def test_cancel_leaves_started_runs_alone(admin_client: Client) -> None:
    running = make_run(status=RunStatus.RUNNING)
    before = db_state()
    response = admin_client.post(url("django_dataflow_workflowrun_changelist"), {
        "action": "cancel", "_selected_action": [running.pk],
    }, follow=True)
    assert f"Run {running.pk} is running; only pending runs are cancelled." in texts(response)
    assert db_state() == before


@pytest.mark.parametrize(("perms", "expected"), [
    (("django_dataflow.view_workflowrun", "shop.add_product"),
     "needs the permission 'django_dataflow.cancel_workflowrun'"),
    (("django_dataflow.view_workflowrun", "django_dataflow.cancel_workflowrun"),
     "needs permission 'shop.add_product'"),
])
def test_cancel_refusals_leave_the_database_unchanged(perms: tuple[str, ...], expected: str) -> None:
    pending = make_run(status=RunStatus.PENDING, runtime="celery-eager")
    client = staff(*perms)
    before = db_state()
    response = client.post(url("django_dataflow_workflowrun_changelist"), {
        "action": "cancel", "_selected_action": [pending.pk],
    }, follow=True)
    [message] = texts(response)
    assert expected in message
    assert db_state() == before


# ------------------------------------------------------------------------------------- dashboard


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 0.50) == 50.0
    assert stats.percentile(values, 0.95) == 95.0
    assert stats.percentile([3.0], 0.95) == 3.0
    assert stats.percentile([4.0, 1.0, 2.0, 3.0], 0.5) == 2.0


def known_runs() -> dt.datetime:
    """Runs with known statuses, days and node timings; returns 'now' for the dashboard."""
    now = timezone.now().replace(hour=12)
    yesterday = now - dt.timedelta(days=1)
    write = {"nodes": [{"id": "w", "type": "ProductBulkCreateNode", "params": {"data": []}},
                       {"id": "r", "type": "ProductListNode", "params": {}}]}
    for i in range(1, 5):  # four succeeded runs today: w takes 0.1..0.4 s and writes 10 rows each
        make_run(status=RunStatus.SUCCEEDED, created_at=now, workflow=write, definition="load",
                 node_stats={"w": {"seconds": i / 10, "rows": 10}, "r": {"seconds": 0.01, "rows": 3}})
    make_run(status=RunStatus.FAILED, created_at=yesterday, workflow=write, definition="load",
             error="node 'w' failed: disk full", node_stats={"w": {"seconds": 2.0, "rows": 99}})
    make_run(status=RunStatus.FAILED, created_at=now, definition="other", error="boom")
    make_run(status=RunStatus.PENDING, created_at=now)
    make_run(status=RunStatus.SUCCEEDED, created_at=now - dt.timedelta(days=30), workflow=write,
             node_stats={"w": {"seconds": 9.0, "rows": 1000}})  # outside a 7-day window
    return now


def test_dashboard_numbers_match_known_runs() -> None:
    now = known_runs()
    data = stats.collect(7, now=now)
    today, yesterday = timezone.localdate(now), timezone.localdate(now) - dt.timedelta(days=1)
    assert data.status_totals == {"pending": 1, "running": 0, "succeeded": 4, "failed": 2, "cancelled": 0}
    assert data.runs_per_day[today] == {"succeeded": 4, "failed": 1, "pending": 1}
    assert data.runs_per_day[yesterday] == {"failed": 1}
    latency = {item.node_type: item for item in data.node_latency}
    # BulkCreate timings: 0.1, 0.2, 0.3, 0.4 (succeeded) and 2.0 (failed run's node before it failed)
    assert (latency["ProductBulkCreateNode"].count, latency["ProductBulkCreateNode"].p50,
            latency["ProductBulkCreateNode"].p95) == (5, 0.3, 2.0)
    assert (latency["ProductListNode"].p50, latency["ProductListNode"].p95) == (0.01, 0.01)
    assert data.rows_written == 40  # List rows are reads; the failed run rolled back
    assert data.rows_written_per_day == {today: 40}
    assert [(f.name, f.failed, f.total) for f in data.failing] == [("load", 1, 5), ("other", 1, 1)]
    assert data.failing[0].last_error == "node 'w' failed: disk full"


def test_dashboard_sample_is_bounded() -> None:
    now = known_runs()
    data = stats.collect(7, now=now, max_runs=2)
    assert data.runs_sampled == 2 and data.sample_limited
    assert sum(data.status_totals.values()) == 7  # counts still cover the whole window


def test_dashboard_page_shows_the_numbers(admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from django_dataflow import metrics

    monkeypatch.setattr(metrics, "cache_hit_rate", lambda: None)  # counters are per process
    known_runs()
    response = admin_client.get(url("django_dataflow_dashboard"), {"days": "7"})
    page = response.content.decode()
    assert response.context["total_runs"] == 7
    assert '<div class="dataflow-kpi" id="kpi-rows-written"><strong>40</strong>' in page
    assert "<td>ProductBulkCreateNode</td><td>5</td><td>0.300000</td><td>2.000000</td>" in page
    assert "not available" in page  # no cache metrics yet
    assert page.count('<svg class="dataflow-chart"') == 3
    assert "disk full" in page


def test_dashboard_shows_the_cache_hit_rate_when_metrics_exist(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stats, "cache_hit_rate", lambda: 0.75)
    page = admin_client.get(url("django_dataflow_dashboard")).content.decode()
    assert '<strong>75.0%</strong>cache hit rate' in page


@pytest.mark.parametrize(("asked", "used"), [("3", 3), ("0", 1), ("1000", 90), ("x", 14), ("", 14)])
def test_dashboard_window_is_bounded(admin_client: Client, asked: str, used: int) -> None:
    assert admin_client.get(url("django_dataflow_dashboard"), {"days": asked}).context["days"] == used


def test_dashboard_needs_view_permission_on_runs() -> None:
    dashboard = url("django_dataflow_dashboard")
    assert staff("django_dataflow.view_workflowdefinition").get(dashboard).status_code == 403
    assert staff("django_dataflow.view_workflowrun").get(dashboard).status_code == 200


def test_chart_labels_are_escaped() -> None:
    svg = charts.stacked_bars(["<script>"], [("a&b", "#000", [1])], title="<t>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    bars = charts.grouped_hbars([("<x>", [0.1, 0.2])], [("p50", "#111"), ("p95", "#222")], title="t")
    assert "&lt;x&gt;" in bars and bars.count("<rect") == 4  # two bars, two legend keys


def test_dashboard_days_setting_is_checked(settings: Any) -> None:
    problems = conf.find_problems({"ADMIN_DASHBOARD_DAYS": 91})
    assert [p.id for p in problems] == ["django_dataflow.E050"]
    assert "ADMIN_DASHBOARD_DAYS" in problems[0].message
    assert conf.find_problems({"ADMIN_DASHBOARD_DAYS": 90}) == []
    assert [p.id for p in conf.find_problems({"ADMIN_DASHBOARD_MAX_RUNS": 0})] == ["django_dataflow.E003"]
    settings.DATAFLOW = {**settings.DATAFLOW, "ADMIN_DASHBOARD_DAYS": 3}
    assert conf.admin_dashboard_days() == 3
