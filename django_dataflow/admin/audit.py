"""The read-only admin of audit entries (docs/audit.md)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class AuditEntryAdmin(admin.ModelAdmin):
    """Audit entries, read-only: an audit trail nobody can edit from the admin."""

    list_display = (
        "created_at", "action", "model", "object_pk", "count", "actor", "tenant", "node_id", "run_id",
    )
    list_filter = ("model", "action", "actor", "tenant")
    search_fields = ("object_pk", "run_id", "node_id", "actor")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Entries are written by runs only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Viewable, never editable."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody deletes audit entries from the admin (retention is a job for a command)."""
        return False
