"""Admin of WorkflowDefinition: the JSON editor, and running a definition now through Celery."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from django_dataflow.admin import guards, tenant_scope
from django_dataflow.admin.display import pretty_json, table
from django_dataflow.admin.forms import INPUT_PREFIX, RunForm, ScheduleForm, WorkflowDefinitionForm
from django_dataflow.admin.triggers import ModelTriggerRuleInline
from django_dataflow.admin.workflow_graph import workflow_svg
from django_dataflow.exceptions import DataflowError, PermissionDenied, WorkflowValidationError
from django_dataflow.models import DefinitionSchedule, RunStatus, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers.schedules import beat_installed


class DefinitionScheduleInline(tenant_scope.HostTenantScheduleInlineMixin, admin.TabularInline):
    """The definition's schedules; saving one writes its django-celery-beat PeriodicTask. On a
    tenant's host, that tenant's schedules only (tenant_scope.py)."""

    model = DefinitionSchedule
    form = ScheduleForm
    extra = 0
    fields = ["crontab", "interval_seconds", "inputs", "tenant", "all_tenants", "overlap", "enabled",
              "last_fired_at", "skipped_fires"]
    readonly_fields = ["last_fired_at", "skipped_fires"]


class WorkflowDefinitionAdmin(tenant_scope.HostTenantDefinitionMixin, admin.ModelAdmin):
    """Named workflows: edited as JSON, validated on save, run from the admin. On a tenant's host,
    read-only, run in that tenant, with that tenant's schedules (tenant_scope.py)."""

    form = WorkflowDefinitionForm
    list_display = ("name", "enabled", "version", "node_count", "input_list", "updated_at", "last_run")
    list_filter = ("enabled",)
    search_fields = ("name", "description")
    readonly_fields = ("version", "graph", "inputs_display", "nodes_display", "created_at", "updated_at")
    actions = ["run_now"]
    change_form_template = "admin/django_dataflow/workflowdefinition/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """The editor first; what the saved workflow holds below it."""
        main = (None, {"fields": ["name", "description", "enabled", "workflow"]})
        chains = ("Follow-up definitions", {"fields": ["on_success", "on_failure"]})
        if obj is None:
            return [main, chains]
        saved = ("Saved workflow", {"fields": ["version", "graph", "nodes_display", "inputs_display",
                                               "created_at", "updated_at"]})
        return [main, chains, saved]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[admin.options.InlineModelAdmin]]:
        """Schedules when django-celery-beat (their store) is installed; stored triggers always."""
        schedules = [DefinitionScheduleInline] if beat_installed() else []
        return [*schedules, ModelTriggerRuleInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowDefinition]:
        """With the latest run's id and status, in the same query."""
        latest = WorkflowRun.objects.filter(definition=OuterRef("name")).order_by("-created_at")
        return super().get_queryset(request).annotate(
            last_run_id=Subquery(latest.values("run_id")[:1]),
            last_run_status=Subquery(latest.values("status")[:1]),
        )

    @admin.display(description="nodes")
    def node_count(self, obj: WorkflowDefinition) -> int:
        """Number of nodes."""
        return len(obj.workflow.get("nodes", [])) if isinstance(obj.workflow, dict) else 0

    @admin.display(description="inputs")
    def input_list(self, obj: WorkflowDefinition) -> str:
        """The '{{inputs}}' the definition needs."""
        try:
            return ", ".join(sorted(obj.build().input_names)) or "-"
        except WorkflowValidationError:
            return "(invalid)"

    @admin.display(description="inputs")
    def inputs_display(self, obj: WorkflowDefinition) -> str:
        """Same as the list column, on the change page."""
        return self.input_list(obj)

    @admin.display(description="graph")
    def graph(self, obj: WorkflowDefinition) -> Any:
        """The saved workflow drawn: nodes in topological layers, connections labelled."""
        return workflow_svg(obj.workflow, title=f"Workflow {obj.name}")

    @admin.display(description="nodes")
    def nodes_display(self, obj: WorkflowDefinition) -> Any:
        """Each node's id, type and params."""
        nodes = obj.workflow.get("nodes", []) if isinstance(obj.workflow, dict) else []
        return table(("id", "type", "params"),
                     ((n.get("id"), n.get("type"), pretty_json(n.get("params") or {})) for n in nodes))

    @admin.display(description="last run")
    def last_run(self, obj: WorkflowDefinition) -> Any:
        """Status of the latest run of this definition, linked."""
        # Annotations of get_queryset(): both or neither (the latest run's id and its status).
        run_id, status = getattr(obj, "last_run_id", None), getattr(obj, "last_run_status", None)
        if run_id is None or status is None:
            return "-"
        url = reverse("admin:django_dataflow_workflowrun_change", args=[run_id])
        return format_html('<a href="{}">{}</a>', url, RunStatus(status).label)

    # -- running

    def get_urls(self) -> list[Any]:
        """Adds <id>/run/: the form that collects a definition's inputs and submits the run."""
        run = path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view),
                   name="django_dataflow_workflowdefinition_run")
        return [run, *super().get_urls()]

    @admin.action(description="Run now (asynchronously, through Celery)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[WorkflowDefinition]) -> HttpResponse | None:
        """Open the run form of the one selected definition."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one definition to run.", messages.WARNING)
            return None
        definition = queryset.get()
        return HttpResponseRedirect(
            reverse("admin:django_dataflow_workflowdefinition_run", args=[definition.pk])
        )

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the inputs form; POST: CeleryRuntime.submit(definition, inputs, user=request.user)."""
        definition = get_object_or_404(WorkflowDefinition, pk=object_id)
        if not self.has_view_permission(request, definition):
            raise DjangoPermissionDenied
        change_url = reverse("admin:django_dataflow_workflowdefinition_change", args=[definition.pk])
        try:
            workflow = definition.build()
        except WorkflowValidationError as exc:
            self.message_user(request, f"Refused: {definition.name} does not validate: {exc}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        refused = guards.refusal(request.user, "run", workflow)
        if refused:
            self.message_user(request, refused, messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = RunForm(workflow, request.POST if request.method == "POST" else None,
                       pinned_tenant=tenant_scope.host_tenant(request))
        if request.method == "POST" and form.is_valid():
            run_id = self._submit(request, definition, form)
            if run_id is not None:
                run_url = reverse("admin:django_dataflow_workflowrun_change", args=[run_id])
                return HttpResponseRedirect(run_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {definition.name}",
            "opts": self.opts,
            "original": definition,
            "form": form,
            "has_inputs": any(name.startswith(INPUT_PREFIX) for name in form.fields),
            "change_url": change_url,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/django_dataflow/workflowdefinition/run.html", context)

    def _submit(self, request: HttpRequest, definition: WorkflowDefinition, form: RunForm) -> str | None:
        from django_dataflow.runtime.celery import CeleryRuntime

        try:
            # The run is sent when this block commits (eager mode: performed then, in this request).
            with transaction.atomic():
                handle = CeleryRuntime().submit(definition, form.inputs(), tenant=form.tenant(),
                                                user=request.user)
        except PermissionDenied as exc:
            self.message_user(request, f"Refused: {exc}.", messages.ERROR)
            return None
        except DataflowError as exc:
            form.add_error(None, str(exc))
            return None
        self.message_user(
            request, f"Run {handle.run_id} of {definition.name} v{definition.version} was submitted.",
            messages.SUCCESS,
        )
        return handle.run_id
