"""The read-only admin of audit entries (docs/audit.md)."""

from __future__ import annotations

from django.contrib import admin

from django_dataflow.admin.readonly import ReadOnlyAdminMixin


class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Audit entries, read-only: an audit trail nobody can edit from the admin."""

    list_display = (
        "created_at", "action", "model", "object_pk", "count", "actor", "tenant", "node_id", "run_id",
    )
    list_filter = ("model", "action", "actor", "tenant")
    search_fields = ("object_pk", "run_id", "node_id", "actor")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")



