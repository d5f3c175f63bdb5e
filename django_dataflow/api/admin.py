"""Admin for API tokens: issue one (the raw token is shown once), list, revoke.

Imported by DataflowConfig.ready() when django.contrib.admin is installed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from django_dataflow.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens by user; only the hash is stored, so a lost token is revoked and reissued."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at")
    raw_id_fields = ("user",)
    actions = ("revoke",)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        """A new token gets its secret here, shown once in a message."""
        if change:
            super().save_model(request, obj, form, change)
            return
        from django_dataflow.api import tokens

        raw = tokens.generate()
        obj.prefix, obj.key_hash = tokens.prefix(raw), tokens.digest(raw)
        super().save_model(request, obj, form, change)
        self.message_user(
            request, f"The new API token is {raw} — copy it now: it is stored only as a hash and "
            "cannot be shown again.", messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        """Refuse the selected tokens from now on."""
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
