"""Admin of the stored model-change triggers (ModelTriggerRule): their own list, and an inline on
each workflow definition's page. Rows go through ModelTriggerRule.clean() and save(); a saved row
fires in this process from its commit on, in the others within DATAFLOW['TRIGGER_REFRESH_SECONDS'].

A row watches a model in every tenant, so on a tenant's host (django-tenants) the rows are shown,
never added, changed or deleted, and the definition page hides the inline (it is not tenant-scoped:
tenant_scope.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from django_dataflow.admin.forms import PrettyJSONField, ScheduleForm
from django_dataflow.admin.tenant_scope import host_tenant
from django_dataflow.models import ModelTriggerRule
from django_dataflow.registry import registry


class ModelTriggerRuleForm(forms.ModelForm):
    """The watched model as a list of the registered models; the model's clean() explains refusals."""

    inputs = PrettyJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 40, "spellcheck": "false"}),
        help_text='JSON object added to every run\'s inputs; "pk", "pks", "model" and "event" come from '
                  "the change and may not be set here.",
    )

    class Meta:
        model = ModelTriggerRule
        fields = ["model", "event", "definition", "inputs", "per_row", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = sorted(entry.label for entry in registry().entries())
        current = self.initial.get("model")
        if current and current not in labels:  # a row whose model is no longer registered stays visible
            labels.append(current)
        # A select, not a ChoiceField: an unknown label still reaches ModelTriggerRule.clean(),
        # whose error names the registered models.
        self.fields["model"].widget = forms.Select(choices=[("", "---------"), *((x, x) for x in labels)])

    # Same rule as a schedule's inputs: empty means none, anything else must be a JSON object.
    clean_inputs = ScheduleForm.clean_inputs


class ModelTriggerRuleInline(admin.TabularInline):
    """The definition's stored triggers."""

    model = ModelTriggerRule
    form = ModelTriggerRuleForm
    extra = 0
    fields = ["model", "event", "inputs", "per_row", "enabled"]


class ModelTriggerRuleAdmin(admin.ModelAdmin):
    """Every stored trigger: which model and event start which definition, enabled or not."""

    form = ModelTriggerRuleForm
    list_display = ("model", "event", "definition_link", "per_row", "enabled", "updated_at")
    list_display_links = ("model",)
    list_editable = ("enabled",)
    list_filter = ("enabled", "event", "per_row", "model")
    list_select_related = ("definition",)
    search_fields = ("model", "definition__name")
    readonly_fields = ("created_at", "updated_at")

    def get_fields(self, request: Any, obj: Any = None) -> tuple[str, ...]:
        """The editable fields, then the timestamps of a saved row."""
        fields = ("model", "event", "definition", "inputs", "per_row", "enabled")
        return fields if obj is None else (*fields, "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """A row fires in every tenant: added on the public host only."""
        return host_tenant(request) is None and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Changed on the public host only (a tenant's host shows the rows)."""
        return host_tenant(request) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleted on the public host only."""
        return host_tenant(request) is None and super().has_delete_permission(request, obj)

    @admin.display(description="definition", ordering="definition__name")
    def definition_link(self, obj: ModelTriggerRule) -> Any:
        """The definition's name, linked to its page."""
        url = reverse("admin:django_dataflow_workflowdefinition_change", args=[obj.definition_id])
        return format_html('<a href="{}">{}</a>', url, obj.definition.name)
