"""What the definitions admin allows on a tenant's host (django-tenants routed the request to a
tenant by its Host): that tenant's schedules and runs only; the shared definition read-only.

WorkflowDefinition and DefinitionSchedule rows live in the public schema and every tenant host's
search_path reaches them, so without this an admin on alpha.test could list, edit or create
schedules for beta or for all tenants, and edit or delete a definition every tenant runs. The
HTTP API draws the same line: the tenant is the request's, never a field to fill
(docs/tenants.md#the-admin-on-a-tenants-host). On the public host, and in projects without
django-tenants, nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from django_dataflow.tenancy import request_tenant as host_tenant

__all__ = ["HostTenantDefinitionMixin", "HostTenantScheduleInlineMixin", "host_tenant"]


class HostTenantScheduleInlineMixin:
    """The schedules inline on a tenant's host: the tenant's own rows; new rows are the tenant's."""

    #: Shown on tenant hosts: this inline scopes its rows to the host's tenant itself.
    tenant_scoped = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """On a tenant's host: its one-tenant schedules (no other tenant's, no all-tenants ones)."""
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        tenant = host_tenant(request)
        return queryset if tenant is None else queryset.filter(tenant=tenant, all_tenants=False)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        """No all_tenants box on a tenant's host."""
        fields = tuple(super().get_fields(request, obj))  # type: ignore[misc]
        return fields if host_tenant(request) is None else tuple(f for f in fields if f != "all_tenants")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """The tenant is shown, not chosen, on a tenant's host."""
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return fields if host_tenant(request) is None else [*fields, "tenant"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        """On a tenant's host, a form pinned to it (ScheduleForm.pinned_tenant)."""
        tenant = host_tenant(request)
        if tenant is not None:
            form = kwargs.get("form") or self.form  # type: ignore[attr-defined]
            kwargs["form"] = type(form.__name__, (form,), {"pinned_tenant": tenant})
        return super().get_formset(request, obj, **kwargs)  # type: ignore[misc]


class HostTenantDefinitionMixin:
    """The definition admin on a tenant's host: the definition is shown, never added, changed or
    deleted (it is every tenant's); the page saves only the tenant-scoped inlines."""

    def _scoped_inlines(self, request: HttpRequest, obj: Any) -> list[admin.options.InlineModelAdmin]:
        return [i for i in super().get_inline_instances(request, obj)  # type: ignore[misc]
                if getattr(i, "tenant_scoped", False)]

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """On a tenant's host, only inlines that scope their rows to its tenant (others: hidden)."""
        if host_tenant(request) is None:
            return list(super().get_inline_instances(request, obj))  # type: ignore[misc]
        return self._scoped_inlines(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field of the definition, on a tenant's host."""
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if host_tenant(request) is None:
            return fields
        shown = flatten_fieldsets(self.get_fieldsets(request, obj))  # type: ignore[attr-defined]
        return list(dict.fromkeys([*fields, *shown]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        """A new definition would be every tenant's: the public host only."""
        return host_tenant(request) is None and super().has_add_permission(request)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting a definition stops it for every tenant: the public host only."""
        return host_tenant(request) is None and super().has_delete_permission(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """On a tenant's host, "change" is saving the page's tenant-scoped inlines (the definition's
        own fields are read-only), so it is allowed when the user may add, change or delete their rows."""
        if host_tenant(request) is None:
            return bool(super().has_change_permission(request, obj))  # type: ignore[misc]
        return any(
            inline.has_add_permission(request, obj) or inline.has_change_permission(request, obj)
            or inline.has_delete_permission(request, obj)
            for inline in self._scoped_inlines(request, obj)
        )

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """On a tenant's host, back to the definition's page: its history (Django's LogEntry, one
        shared table) holds what admins did from every tenant's host, other tenants' schedules too."""
        if host_tenant(request) is None:
            return super().history_view(request, object_id, extra_context)  # type: ignore[misc]
        messages.info(request, "The change history of a shared definition is shown on the public host "
                               "only: it lists changes made from every tenant's host.")
        opts = self.model._meta  # type: ignore[attr-defined]
        return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id],
                                current_app=self.admin_site.name))  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """On a tenant's host the definition is not saved (its fields are read-only there anyway)."""
        if host_tenant(request) is None:
            super().save_model(request, obj, form, change)  # type: ignore[misc]
