"""Admin of WorkflowRun: read-only history with per-node timings, re-run and cancel actions, and the
dashboard page (admin/django_dataflow/workflowrun/dashboard/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from django_dataflow.admin import guards
from django_dataflow.admin.dashboard import dashboard_view
from django_dataflow.admin.display import pretty_json, table
from django_dataflow.admin.readonly import ReadOnlyAdminMixin
from django_dataflow.admin.workflow_graph import workflow_svg
from django_dataflow.exceptions import DataflowError
from django_dataflow.models import RunStatus, WorkflowDefinition, WorkflowRun


class WorkflowRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Run history: read-only for everyone (runs are written by the runtimes only)."""

    list_display = ("short_id", "definition_link", "status", "tenant", "runtime", "created_at",
                    "duration_display", "error_node")
    list_filter = ("status", "tenant", "definition", "runtime", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    search_fields = ("definition", "error_node", "error")
    list_select_related = False
    show_full_result_count = False
    actions = ["rerun", "cancel"]
    change_list_template = "admin/django_dataflow/workflowrun/change_list.html"
    change_form_template = "admin/django_dataflow/workflowrun/change_form.html"
    fieldsets = [
        (None, {"fields": ["run_id", "definition_link", "definition_version", "status", "tenant", "user_id",
                           "runtime", "celery_task_id", "attempts"]}),
        ("Timing", {"fields": ["created_at", "started_at", "finished_at", "duration_display",
                               "node_timings"]}),
        ("Graph", {"fields": ["graph"]}),
        ("Outcome", {"fields": ["results_display", "error_node", "error_type", "error_display"]}),
        ("Request", {"fields": ["inputs_display", "workflow_display"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowRun]:
        """With the definition's pk (one query for the list, not one per row); the list never loads
        the big JSON columns (workflow, inputs, results, node_stats)."""
        definitions = WorkflowDefinition.objects.filter(name=OuterRef("definition")).values("pk")[:1]
        qs = super().get_queryset(request).annotate(definition_pk=Subquery(definitions))
        match = request.resolver_match
        if match is not None and match.url_name == "django_dataflow_workflowrun_changelist":
            qs = qs.defer("workflow", "inputs", "results", "node_stats")
        return qs

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Everything: the page only shows."""
        return flatten_fieldsets(self.fieldsets)




    # -- columns and fields

    @admin.display(description="run", ordering="run_id")
    def short_id(self, obj: WorkflowRun) -> str:
        """The run id's first block; the link opens the full record."""
        return str(obj.run_id).split("-", 1)[0]

    @admin.display(description="definition", ordering="definition")
    def definition_link(self, obj: WorkflowRun) -> Any:
        """The definition's name, linked to it when it still exists."""
        if not obj.definition:
            return "-"
        found = getattr(obj, "definition_pk", None)
        if found is None:
            return obj.definition
        url = reverse("admin:django_dataflow_workflowdefinition_change", args=[found])
        return format_html('<a href="{}">{}</a>', url, obj.definition)

    @admin.display(description="duration")
    def duration_display(self, obj: WorkflowRun) -> str:
        """Seconds from start to finish."""
        return "-" if obj.duration is None else f"{obj.duration:.3f} s"

    @admin.display(description="per-node timings")
    def node_timings(self, obj: WorkflowRun) -> Any:
        """One row per node that ran: id, type, seconds, rows and share of the run's node time."""
        types = {n.get("id"): n.get("type") for n in (obj.workflow or {}).get("nodes", [])}
        stats = obj.node_stats or {}
        total = sum(float(s.get("seconds") or 0) for s in stats.values()) or 1.0
        rows = []
        for node_id, stat in stats.items():
            seconds = float(stat.get("seconds") or 0)
            share = format_html(
                '<span class="dataflow-share" style="display:inline-block;height:8px;background:#79aec8;'
                'width:{}px"></span> {}%',
                round(120 * seconds / total), round(100 * seconds / total),
            )
            rows.append((node_id, types.get(node_id, "?"), f"{seconds:.6f}", stat.get("rows", ""), share))
        return table(("node", "type", "seconds", "rows", "share"), rows)

    @admin.display(description="graph")
    def graph(self, obj: WorkflowRun) -> Any:
        """The workflow as it ran: nodes that ran show their seconds, the failing node is red."""
        failed = obj.error_node if obj.status == RunStatus.FAILED else ""
        return workflow_svg(obj.workflow, failed_node=failed or "", timings=obj.node_stats or {},
                            title=f"Run {obj.run_id}")

    @admin.display(description="results")
    def results_display(self, obj: WorkflowRun) -> Any:
        """Results by node id, indented."""
        return pretty_json(obj.results)

    @admin.display(description="error")
    def error_display(self, obj: WorkflowRun) -> Any:
        """The error message, kept as written (multi-line)."""
        return format_html('<pre class="dataflow-error">{}</pre>', obj.error) if obj.error else "-"

    @admin.display(description="inputs")
    def inputs_display(self, obj: WorkflowRun) -> Any:
        """The run's inputs, indented."""
        return pretty_json(obj.inputs)

    @admin.display(description="workflow")
    def workflow_display(self, obj: WorkflowRun) -> Any:
        """The workflow as it ran, indented."""
        return pretty_json(obj.workflow)

    # -- actions

    @admin.action(description="Re-run selected failed runs (same workflow and inputs)")
    def rerun(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        """Submit each failed run again through CeleryRuntime, as request.user."""
        from django_dataflow.runtime.celery import CeleryRuntime

        for run in self._actionable(request, queryset, RunStatus.FAILED, "rerun", "re-run"):
            try:
                with transaction.atomic():
                    handle = CeleryRuntime().submit(run.workflow, run.inputs, tenant=run.tenant or None,
                                                    user=request.user)
                    # Before the commit sends it: the new run keeps the definition it came from.
                    WorkflowRun.objects.filter(pk=handle.run_id).update(
                        definition=run.definition, definition_version=run.definition_version
                    )
            except DataflowError as exc:
                self.message_user(request, f"Run {run.pk}: refused: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"Run {run.pk} re-run as {handle.run_id}.", messages.SUCCESS)

    @admin.action(description="Cancel selected pending runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        """Cancel runs no worker has started (RunHandle.cancel: one conditional UPDATE)."""
        from django_dataflow.runtime.celery import CeleryRuntime

        for run in self._actionable(request, queryset, RunStatus.PENDING, "cancel", "cancelled"):
            if CeleryRuntime().handle(str(run.pk)).cancel():
                self.message_user(request, f"Run {run.pk} was cancelled.", messages.SUCCESS)
            else:
                self.message_user(request, f"Run {run.pk} had already started; it was not cancelled.",
                                  messages.WARNING)

    def _actionable(
        self, request: HttpRequest, queryset: QuerySet[WorkflowRun], status: str, action: str, done: str
    ) -> Iterator[WorkflowRun]:
        """The selected runs in `status` that request.user may `action`; the others are reported."""
        for run in queryset:
            if run.status != status:
                self.message_user(request, f"Run {run.pk} is {run.status}; only {status} runs are {done}.",
                                  messages.WARNING)
                continue
            refused = guards.refusal(request.user, action, run.workflow)
            if refused:
                self.message_user(request, f"Run {run.pk}: {refused}", messages.ERROR)
                continue
            yield run

    # -- the dashboard

    def get_urls(self) -> list[Any]:
        """Adds dashboard/ before the object URLs (which would take it for a run id)."""
        view = self.admin_site.admin_view(self.dashboard)
        return [path("dashboard/", view, name="django_dataflow_dashboard"), *super().get_urls()]

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        """The dashboard page; needs view permission on runs."""
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        return dashboard_view(self, request)
