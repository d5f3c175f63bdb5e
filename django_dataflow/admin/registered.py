"""Admin of the persistent model registry: RegisteredModel rows with their fields, generated node
types, schema versions and drift status. Read-only: migrate and dataflow_sync write these rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.http import HttpRequest
from django.utils.html import format_html

from django_dataflow import conf
from django_dataflow.admin.display import pretty_json, table
from django_dataflow.admin.readonly import ReadOnlyAdminMixin
from django_dataflow.models import ModelSchemaVersion, RegisteredModel
from django_dataflow.nodes import OPERATION_NAMES
from django_dataflow.registry import get_entry, get_node_class

#: Keys of a field description shown as columns; the rest are summarised under "details".
FIELD_COLUMNS = ("name", "column", "type", "null", "unique", "primary_key")


class SchemaVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The model's schema history, newest first."""

    model = ModelSchemaVersion
    fields = ("version", "schema_hash", "field_names", "recorded_at")
    readonly_fields = fields
    ordering = ("-version",)
    extra = 0
    can_delete = False

    @admin.display(description="fields")
    def field_names(self, obj: ModelSchemaVersion) -> str:
        """The version's field names."""
        return ", ".join(f.get("name", "?") for f in obj.fields or [])


def drift_lines(row: RegisteredModel) -> tuple[str, list[str]]:
    """('ok' | 'drift' | 'unknown', explanation lines) for one registry row, as this process sees it."""
    entry = get_entry(row.label)
    if entry is None:
        return "unknown", [f"{row.label} is not registered in this application: no drift check here."]
    from django_dataflow.schema_registry.description import describe_entry
    from django_dataflow.schema_registry.drift import find_drift

    lines = []
    if row.application == conf.application() and describe_entry(entry).schema_hash != row.schema_hash:
        lines.append("The recorded schema differs from this application's code: run migrate or "
                     "manage.py dataflow_sync.")
    findings = [f for f in find_drift([row.app_label]) if f.obj in (row.app_label, row.label, row.db_table)]
    lines += [f"{f.id}: {f.text()}" for f in findings]
    drifting = bool(lines) and (len(lines) > len(findings) or any(f.is_drift for f in findings))
    return ("drift" if drifting else "ok"), lines or ["No drift: code, migrations, table and registry agree."]


class RegisteredModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What each application registered: one row per (application, model)."""

    list_display = ("label_display", "application", "node_name", "version", "db_table", "managed", "dynamic",
                    "last_registered")
    list_filter = ("application", "app_label", "dynamic", "managed")
    search_fields = ("app_label", "model_name", "node_name", "db_table")
    inlines = [SchemaVersionInline]
    fieldsets = [
        (None, {"fields": ["application", "label_display", "node_name", "db_table", "version", "schema_hash",
                           "managed", "dynamic", "migrates", "first_registered", "last_registered"]}),
        ("Drift", {"fields": ["drift_status"]}),
        ("Fields", {"fields": ["fields_table", "hidden_fields"]}),
        ("Generated node types", {"fields": ["node_types"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Everything shown is read-only."""
        return flatten_fieldsets(self.fieldsets)

    @admin.display(description="model", ordering="app_label")
    def label_display(self, obj: RegisteredModel) -> str:
        """app_label.ModelName."""
        return obj.label

    @admin.display(description="fields")
    def fields_table(self, obj: RegisteredModel) -> Any:
        """One row per recorded field; relation and other details as JSON."""
        rows = []
        for item in obj.fields or []:
            details = {k: v for k, v in item.items() if k not in FIELD_COLUMNS and k != "class"}
            rows.append((*(item.get(k, "") for k in FIELD_COLUMNS), pretty_json(details) if details else ""))
        return table((*FIELD_COLUMNS, "details"), rows)

    @admin.display(description="node types")
    def node_types(self, obj: RegisteredModel) -> Any:
        """The node types the model's node name generates, and whether this process knows them."""
        rows = []
        for op in OPERATION_NAMES:
            type_name = f"{obj.node_name}{op}Node"
            known = get_node_class(type_name) is not None
            rows.append((type_name, op, "yes" if known else "no (not registered in this application)"))
        return table(("node type", "operation", "available here"), rows)

    @admin.display(description="drift status")
    def drift_status(self, obj: RegisteredModel) -> Any:
        """Drift of this model as this application sees it (the checks of manage.py dataflow_check)."""
        state, lines = drift_lines(obj)
        return format_html('<strong class="dataflow-drift-{}">{}</strong><pre class="dataflow-json">{}</pre>',
                           state, state, "\n".join(lines))
