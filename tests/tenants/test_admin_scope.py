"""The admin on a tenant's host (django-tenants routes alpha.test to alpha): that tenant's schedules,
runs and audit entries only, the shared definitions read-only, run now in that tenant only; the
public host keeps choosing any tenant (docs/tenants.md#the-admin-on-a-tenants-host)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django_tenants.utils import schema_context

from django_dataflow.models import AuditEntry, DefinitionSchedule, RunStatus, WorkflowDefinition, WorkflowRun
from tests.tenants.conftest import rows, schema_state

pytestmark = pytest.mark.postgres

NEW_PRODUCT = {"nodes": [{"id": "p", "type": "ProductCreateNode",
                          "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "1.00"}}]}
#: A host no Domain row names: with SHOW_PUBLIC_IF_NO_TENANT_FOUND, django-tenants serves it in public.
PUBLIC_HOST = "www.test"


class HostClient(Client):
    """A test client whose requests are routed by their Host; the connection is put back in the
    public schema after each (django-tenants' middleware leaves it in the tenant's)."""

    def request(self, **request: Any) -> Any:
        """One request, then the connection back in public."""
        try:
            return super().request(**request)
        finally:
            connection.set_schema_to_public()


@pytest.fixture
def eager(tenants: Any) -> Iterator[tuple[str, ...]]:
    """CeleryRuntime runs in the request; hosts without a tenant are the public host."""
    with override_settings(DATAFLOW={**settings.DATAFLOW, "CELERY_EAGER": True},
                           SHOW_PUBLIC_IF_NO_TENANT_FOUND=True):
        yield tenants


@pytest.fixture
def root(eager: Any) -> User:
    """A superuser (stored in the public schema): even one is scoped by the host's tenant."""
    return User.objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def definition(eager: Any) -> WorkflowDefinition:
    """A shared definition that creates a product (a tenant-app model)."""
    return WorkflowDefinition.objects.create(name="new-product", workflow=NEW_PRODUCT)


def admin_on(host: str, user: User) -> HostClient:
    """A logged-in admin session on one host."""
    client = HostClient(HTTP_HOST=host)
    client.force_login(user)
    return client


def change_url(definition: WorkflowDefinition) -> str:
    """The definition's admin page."""
    return reverse("admin:django_dataflow_workflowdefinition_change", args=[definition.pk])


def schedule(definition: WorkflowDefinition, **fields: Any) -> DefinitionSchedule:
    """A schedule row (its PeriodicTask written by the save signal)."""
    return DefinitionSchedule.objects.create(definition=definition, **{"interval_seconds": 60, **fields})


def inline(rows_: list[dict[str, Any]], initial: int = 0) -> dict[str, str]:
    """POST data of the schedules inline: its management form and rows (and an empty model
    triggers inline, which the public host's page also has)."""
    data = {"schedules-TOTAL_FORMS": str(len(rows_)), "schedules-INITIAL_FORMS": str(initial),
            "schedules-MIN_NUM_FORMS": "0", "schedules-MAX_NUM_FORMS": "1000",
            "model_triggers-TOTAL_FORMS": "0", "model_triggers-INITIAL_FORMS": "0"}
    for i, row in enumerate(rows_):
        data.update({f"schedules-{i}-{key}": str(value) for key, value in row.items()})
    return data


NEW_ROW = {"crontab": "0 3 * * *", "inputs": '{"name": "n", "sku": "S"}', "overlap": "skip", "enabled": "on"}


def saved_schedules() -> list[tuple[Any, ...]]:
    """Every schedule row and its PeriodicTask's kwargs (public schema), by pk."""
    from django_celery_beat.models import PeriodicTask

    tasks = dict(PeriodicTask.objects.filter(name__startswith="django_dataflow.schedule.")
                 .values_list("name", "kwargs"))
    return [(s.pk, s.tenant, s.all_tenants, s.crontab, s.interval_seconds, s.enabled, tasks.get(s.task_name))
            for s in DefinitionSchedule.objects.order_by("pk")]


def inline_errors(response: Any) -> str:
    """The schedules inline's errors, as text."""
    formset = response.context["inline_admin_formsets"][0].formset
    return json.dumps([formset.non_form_errors(), *formset.errors])


# ------------------------------------------------------------------------------------ schedules


@pytest.fixture
def four(definition: WorkflowDefinition) -> dict[str, DefinitionSchedule]:
    """One schedule each: alpha's, beta's, all tenants', and one without tenant."""
    return {"alpha": schedule(definition, tenant="alpha"), "beta": schedule(definition, tenant="beta"),
            "all": schedule(definition, all_tenants=True), "none": schedule(definition)}


@pytest.mark.schedules
def test_a_tenant_host_lists_only_its_own_schedules(root: User, definition: WorkflowDefinition,
                                                     four: dict[str, DefinitionSchedule]) -> None:
    response = admin_on("alpha.test", root).get(change_url(definition))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.pk for form in formset.initial_forms] == [four["alpha"].pk]
    # The tenant is shown, not chosen; there is no all-tenants box.
    assert "tenant" not in formset.forms[0].fields and "all_tenants" not in formset.forms[0].fields
    assert formset.empty_form.instance.tenant == "alpha"
    # The public host lists all four, each with its tenant and all-tenants fields.
    response = admin_on(PUBLIC_HOST, root).get(change_url(definition))
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.pk for form in formset.initial_forms] == [s.pk for s in four.values()]
    assert {"tenant", "all_tenants"} <= set(formset.forms[0].fields)


@pytest.mark.schedules
def test_a_schedule_added_on_a_tenant_host_is_that_tenants(
    root: User, definition: WorkflowDefinition,
) -> None:
    before = WorkflowDefinition.objects.values().get(pk=definition.pk)
    response = admin_on("alpha.test", root).post(change_url(definition), inline([NEW_ROW]))
    assert response.status_code == 302, inline_errors(response)
    [(_, tenant, all_tenants, crontab, _, _, task)] = saved_schedules()
    assert (tenant, all_tenants, crontab) == ("alpha", False, "0 3 * * *")
    assert json.loads(task)["tenant"] == "alpha" and json.loads(task)["all_tenants"] is False
    # Saving the page saved the schedule, not the definition (same version, same updated_at).
    assert WorkflowDefinition.objects.values().get(pk=definition.pk) == before


@pytest.mark.schedules
@pytest.mark.parametrize(("forged", "refused"), [
    ({"tenant": "beta"}, "tenant 'beta' refused"),
    ({"tenant": "public"}, "tenant 'public' refused"),
    ({"all_tenants": "on"}, "all_tenants refused"),
    ({"tenant": "beta", "all_tenants": "on"}, "tenant 'beta' refused"),
])
def test_a_forged_row_for_another_tenant_is_refused_and_nothing_is_saved(
    root: User, definition: WorkflowDefinition, four: dict[str, DefinitionSchedule],
    forged: dict[str, str], refused: str,
) -> None:
    before = saved_schedules()
    response = admin_on("alpha.test", root).post(change_url(definition), inline([{**NEW_ROW, **forged}]))
    assert response.status_code == 200
    errors = inline_errors(response)
    assert refused in errors and "host of tenant 'alpha'" in errors, errors
    assert saved_schedules() == before


@pytest.mark.schedules
def test_another_tenants_schedule_cannot_be_edited_or_deleted_from_a_tenant_host(
    root: User, definition: WorkflowDefinition, four: dict[str, DefinitionSchedule],
) -> None:
    before = saved_schedules()
    client = admin_on("alpha.test", root)
    for victim in (four["beta"], four["all"], four["none"]):
        row = {"id": victim.pk, "definition": definition.pk, "interval_seconds": "5", "inputs": "{}",
               "overlap": "allow", "enabled": ""}
        edited = client.post(change_url(definition), inline([row], initial=1))
        assert edited.status_code == 200
        refused = f"schedule {victim.pk} refused: it is not one of the schedules of tenant 'alpha'"
        assert refused in inline_errors(edited)
        # Marked for deletion, the unknown row is skipped: the page saves, nothing is deleted.
        deleted = client.post(change_url(definition), inline([{**row, "DELETE": "on"}], initial=1))
        assert deleted.status_code == 302
    assert saved_schedules() == before


@pytest.mark.schedules
def test_a_tenant_host_edits_and_deletes_its_own_schedule(
    root: User, definition: WorkflowDefinition, four: dict[str, DefinitionSchedule],
) -> None:
    client = admin_on("alpha.test", root)
    own = {"id": four["alpha"].pk, "definition": definition.pk, "interval_seconds": "90", "inputs": "{}",
           "overlap": "skip", "enabled": "on"}
    assert client.post(change_url(definition), inline([own], initial=1)).status_code == 302
    assert DefinitionSchedule.objects.get(pk=four["alpha"].pk).interval_seconds == 90
    deleted = client.post(change_url(definition), inline([{**own, "DELETE": "on"}], initial=1))
    assert deleted.status_code == 302
    assert not DefinitionSchedule.objects.filter(pk=four["alpha"].pk).exists()
    assert DefinitionSchedule.objects.count() == 3


@pytest.mark.schedules
def test_the_public_host_still_schedules_any_tenant_or_all(
    root: User, definition: WorkflowDefinition,
) -> None:
    data = {"name": "new-product", "description": "", "enabled": "on", "on_success": "", "on_failure": "",
            "workflow": json.dumps(NEW_PRODUCT),
            **inline([{**NEW_ROW, "tenant": "beta"}, {**NEW_ROW, "all_tenants": "on"}])}
    response = admin_on(PUBLIC_HOST, root).post(change_url(definition), data)
    assert response.status_code == 302, inline_errors(response)
    assert [(tenant, every) for _, tenant, every, *_ in saved_schedules()] == [("beta", False), ("", True)]


@pytest.mark.schedules
def test_managing_a_tenants_schedules_needs_the_schedule_permissions_not_the_definitions(
    eager: Any, definition: WorkflowDefinition,
) -> None:
    def staff(name: str, *codenames: str) -> User:
        user = User.objects.create_user(name, password="pw", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_dataflow",
                                                             codename__in=codenames))
        return User.objects.get(pk=user.pk)

    scheduler = staff("scheduler", "view_workflowdefinition", "view_definitionschedule",
                      "add_definitionschedule")
    added = admin_on("alpha.test", scheduler).post(change_url(definition), inline([NEW_ROW]))
    assert added.status_code == 302
    assert [tenant for _, tenant, *_ in saved_schedules()] == ["alpha"]
    viewer = staff("viewer", "view_workflowdefinition", "view_definitionschedule")
    assert admin_on("alpha.test", viewer).post(change_url(definition), inline([NEW_ROW])).status_code == 403
    assert len(saved_schedules()) == 1


# ------------------------------------------------------------------------------------ definitions


def test_a_definition_is_read_only_on_a_tenant_host(root: User, definition: WorkflowDefinition) -> None:
    client = admin_on("alpha.test", root)
    page = client.get(change_url(definition))
    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields) == set()  # every field shown read-only
    before = WorkflowDefinition.objects.values().get(pk=definition.pk)
    forged = {"name": "renamed", "enabled": "", "on_success": "new-product", "description": "x",
              "workflow": json.dumps({"nodes": [{"id": "c", "type": "ProductCountNode", "params": {}}]}),
              **inline([])}
    assert client.post(change_url(definition), forged).status_code == 302
    assert WorkflowDefinition.objects.values().get(pk=definition.pk) == before
    # Adding or deleting a definition (every tenant's) is refused on a tenant host.
    delete = reverse("admin:django_dataflow_workflowdefinition_delete", args=[definition.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:django_dataflow_workflowdefinition_add")).status_code == 403
    changelist = reverse("admin:django_dataflow_workflowdefinition_changelist")
    bulk = client.post(changelist, {"action": "delete_selected", "_selected_action": [definition.pk],
                                    "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert WorkflowDefinition.objects.filter(pk=definition.pk).exists()
    # The public host edits it.
    edited = admin_on(PUBLIC_HOST, root).post(change_url(definition), {**forged, "name": "new-product",
                                                                       "on_success": ""})
    assert edited.status_code == 302
    assert WorkflowDefinition.objects.get(pk=definition.pk).enabled is False


def test_a_definitions_history_is_shown_on_the_public_host_only(
    root: User, definition: WorkflowDefinition,
) -> None:
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    # What saving beta's schedules inline on beta.test logs: one shared LogEntry table.
    LogEntry.objects.create(
        user=root, content_type=ContentType.objects.get_for_model(WorkflowDefinition),
        object_id=str(definition.pk), object_repr=str(definition), action_flag=CHANGE,
        change_message="Added schedule for tenant beta",
    )
    history = reverse("admin:django_dataflow_workflowdefinition_history", args=[definition.pk])
    response = admin_on("alpha.test", root).get(history, follow=True)
    assert response.redirect_chain == [(change_url(definition), 302)]
    assert "shown on the public host only" in response.content.decode()
    assert "tenant beta" not in response.content.decode()
    public = admin_on(PUBLIC_HOST, root).get(history)
    assert public.status_code == 200 and "Added schedule for tenant beta" in public.content.decode()


# ------------------------------------------------------------------------------------ run now


def run_url(definition: WorkflowDefinition) -> str:
    """The definition's run form."""
    return reverse("admin:django_dataflow_workflowdefinition_run", args=[definition.pk])


def test_run_now_on_a_tenant_host_runs_in_that_tenant_only(
    root: User, definition: WorkflowDefinition,
) -> None:
    client = admin_on("alpha.test", root)
    form = client.get(run_url(definition)).context["form"]
    assert form.fields["tenant"].disabled and form["tenant"].value() == "alpha"
    untouched = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    response = client.post(run_url(definition), {"input__name": "Lamp", "input__sku": "L-1"})
    assert response.status_code == 302
    assert rows("alpha", "shop_product", "sku") == [("L-1",)]
    assert rows("alpha", "django_dataflow_workflowrun", "tenant, status, definition") == [
        ("alpha", "succeeded", "new-product")]
    assert {schema: schema_state(schema) for schema in ("beta", "gamma", "public")} == untouched


def test_run_now_naming_another_tenant_on_a_tenant_host_is_refused(
    root: User, definition: WorkflowDefinition,
) -> None:
    before = {schema: schema_state(schema) for schema in ("alpha", "beta", "gamma", "public")}
    response = admin_on("alpha.test", root).post(
        run_url(definition), {"input__name": "Lamp", "input__sku": "L-1", "tenant": "beta"})
    assert response.status_code == 200
    [error] = response.context["form"].errors["tenant"]
    assert error.startswith("tenant 'beta' refused: on the host of tenant 'alpha'")
    assert {schema: schema_state(schema) for schema in ("alpha", "beta", "gamma", "public")} == before


def test_run_now_on_the_public_host_runs_in_the_tenant_chosen(
    root: User, definition: WorkflowDefinition,
) -> None:
    response = admin_on(PUBLIC_HOST, root).post(
        run_url(definition), {"input__name": "Lamp", "input__sku": "B-1", "tenant": "beta"})
    assert response.status_code == 302
    assert rows("beta", "shop_product", "sku") == [("B-1",)]
    assert rows("alpha", "shop_product") == []


# ------------------------------------------------------------------------------------ runs and audit


def failed_run(schema: str, status: str = RunStatus.FAILED) -> WorkflowRun:
    """A run of the definition (failed unless told) recorded in one tenant's schema."""
    with schema_context(schema):
        return WorkflowRun.objects.create(
            workflow=NEW_PRODUCT, inputs={"name": schema, "sku": f"{schema}-1"}, tenant=schema,
            status=status, definition="new-product", runtime="celery",
        )


def test_the_run_admin_on_a_tenant_host_lists_reruns_and_cancels_only_its_runs(
    root: User, definition: WorkflowDefinition,
) -> None:
    alpha_failed, beta_failed = failed_run("alpha"), failed_run("beta")
    alpha_pending = failed_run("alpha", RunStatus.PENDING)
    beta_pending = failed_run("beta", RunStatus.PENDING)
    client = admin_on("alpha.test", root)
    changelist = reverse("admin:django_dataflow_workflowrun_changelist")
    listed = {run.pk for run in client.get(changelist).context["cl"].result_list}
    assert listed == {alpha_failed.pk, alpha_pending.pk}
    beta_page = reverse("admin:django_dataflow_workflowrun_change", args=[beta_failed.pk])
    assert client.get(beta_page).status_code == 302  # "does not exist here": back to the index
    beta_before = schema_state("beta")
    # Forged selections naming beta's runs find nothing in alpha's table.
    client.post(changelist, {"action": "rerun", "_selected_action": [alpha_failed.pk, beta_failed.pk]})
    client.post(changelist, {"action": "cancel", "_selected_action": [alpha_pending.pk, beta_pending.pk]})
    assert schema_state("beta") == beta_before
    assert rows("alpha", "shop_product", "sku") == [("alpha-1",)]  # the re-run ran, in alpha
    statuses = rows("alpha", "django_dataflow_workflowrun", "run_id::text, status")
    assert (str(alpha_pending.pk), "cancelled") in statuses
    assert sorted(status for _, status in statuses) == ["cancelled", "failed", "succeeded"]


def test_the_audit_admin_on_a_tenant_host_lists_only_its_entries(root: User) -> None:
    for schema in ("alpha", "beta"):
        with schema_context(schema):
            AuditEntry.objects.create(model="shop.Product", action="create", object_pk="1", tenant=schema)
    response = admin_on("alpha.test", root).get(reverse("admin:django_dataflow_auditentry_changelist"))
    assert [entry.tenant for entry in response.context["cl"].result_list] == ["alpha"]
