"""Running a workflow in one tenant's schema (django-tenants) or refusing a tenant we cannot honour."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.apps import apps

from django_dataflow.exceptions import DataflowError


class TenantError(DataflowError):
    """The tenant named for a run does not exist or tenancy is not configured."""


def tenants_enabled() -> bool:
    """Whether django-tenants is installed in this project."""
    return apps.is_installed("django_tenants")


def tenant_scope(tenant: str | None) -> AbstractContextManager[Any]:
    """A context manager that runs the body in the tenant's schema (nothing for tenant=None)."""
    if tenant is None:
        return nullcontext()
    if not isinstance(tenant, str) or not tenant:
        raise TenantError(f"tenant must be a schema name, not {tenant!r}")
    if not tenants_enabled():
        raise TenantError(
            f"tenant={tenant!r} was given but django-tenants is not installed; "
            "runs without tenants take tenant=None"
        )
    from django_tenants.utils import get_tenant_model, schema_context

    if not get_tenant_model().objects.filter(schema_name=tenant).exists():
        raise TenantError(f"unknown tenant {tenant!r}: no tenant has that schema name")
    return schema_context(tenant)


def current_schema(using: str = "default") -> str | None:
    """The tenant schema the connection is in, or None without django-tenants or in the public schema.

    Cache keys, audit entries and metrics take the tenant from here, so they always name the schema the
    rows were actually read from or written to.
    """
    from django.db import connections

    schema = getattr(connections[using], "schema_name", None)
    if not schema or not tenants_enabled():
        return None
    from django_tenants.utils import get_public_schema_name

    return None if schema == get_public_schema_name() else schema
