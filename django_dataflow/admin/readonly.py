"""Admin pages that only show: registry records, run history and audit entries are written by the
app itself (migrate, dataflow_sync, the runtimes), never by hand from the admin."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No adding, changing or deleting from the admin (viewing needs the view permission)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows come from the app: migrate, dataflow_sync, the runtimes."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A record edited by hand would make drift checks, run history or the audit trail lie."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Retention is a job for a command or a periodic task, not for the admin."""
        return False
