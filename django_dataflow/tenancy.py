"""Running a workflow in one tenant's schema (django-tenants) or refusing a tenant we cannot honour.

Every runtime goes through the same steps: resolve_tenant() (an explicit tenant, else the one
django-tenants' middleware or an enclosing scope put the connection in), tenant_scope() (validates
the tenant before anything runs and switches the connection's schema), refuse_public_run() (a
tenant-app model's node never runs in the public schema). Workers use worker_scope(), which always
leaves the connection in the public schema afterwards, also when the run failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import connections

from django_dataflow.exceptions import DataflowError

if TYPE_CHECKING:
    from django_dataflow.workflow.graph import Workflow


class TenantError(DataflowError):
    """The tenant named for a run does not exist or tenancy is not configured."""


def tenants_enabled() -> bool:
    """Whether django-tenants is installed in this project."""
    return apps.is_installed("django_tenants")


def public_schema() -> str:
    """The schema of shared tables (django-tenants' PUBLIC_SCHEMA_NAME, 'public' by default)."""
    from django_tenants.utils import get_public_schema_name

    return str(get_public_schema_name())


def connection_schema(using: str = "default") -> str | None:
    """The schema the connection is set to (public included), or None without django-tenants."""
    schema = getattr(connections[using], "schema_name", None)
    return schema if schema and tenants_enabled() else None


def current_schema(using: str = "default") -> str | None:
    """The tenant schema the connection is in, or None without django-tenants or in the public schema.

    Cache keys, audit entries and metrics take the tenant from here, so they always name the schema the
    rows were actually read from or written to.
    """
    schema = connection_schema(using)
    if schema is None:
        return None
    return None if schema == public_schema() else schema


def request_tenant(request: Any) -> str | None:
    """The tenant schema django-tenants routed the request to (by its Host); None on the public host
    or without django-tenants. The API and the admin scope what a request may see and start by it."""
    if not tenants_enabled():
        return None
    schema = getattr(getattr(request, "tenant", None), "schema_name", None)
    if not schema:
        return None
    return None if schema == public_schema() else str(schema)


def resolve_tenant(tenant: str | None, using: str = "default") -> str | None:
    """The tenant a run is for: the one given, else the one the connection is in.

    Inside a request routed by django-tenants' middleware (or a schema_context) the connection is
    in that tenant's schema, so that tenant is the default; elsewhere the default is no tenant.
    """
    return current_schema(using) if tenant is None else tenant


def _check_name(tenant: str | None) -> None:
    """The checks of a tenant name that need no query."""
    if not isinstance(tenant, str) or not tenant:
        raise TenantError(f"tenant must be a schema name, not {tenant!r}")
    if not tenants_enabled():
        raise TenantError(
            f"tenant={tenant!r} was given but django-tenants is not installed; "
            "runs without tenants take tenant=None"
        )
    if tenant == public_schema():
        raise TenantError(
            f"tenant={tenant!r} is the public schema, not a tenant; public runs take tenant=None"
        )
    # Never sent to the database when it cannot be a schema name (a NUL byte makes PostgreSQL fail).
    if len(tenant) > 63 or any(c in tenant for c in "\"'\\;\x00\r\n"):
        raise TenantError(f"unknown tenant {tenant[:80]!r}: not a valid schema name")


def _unknown(tenant: str) -> TenantError:
    return TenantError(f"unknown tenant {tenant!r}: no tenant has that schema name")


def validate_tenant(tenant: str | None) -> None:
    """Raise TenantError unless tenant is None or the schema name of an existing tenant."""
    if tenant is None:
        return
    _check_name(tenant)
    from django_tenants.utils import get_tenant_model

    if not get_tenant_model().objects.filter(schema_name=tenant).exists():
        raise _unknown(tenant)


def _search_path(tenant: str) -> list[str]:
    """The search_path django-tenants sets for a tenant (its schema, public, the extra paths)."""
    from django.conf import settings

    return [tenant, public_schema(), *getattr(settings, "PG_EXTRA_SEARCH_PATHS", [])]


def _enter(tenant: str, using: str) -> None:
    """Switch the connection to an existing tenant's schema: one statement checks and switches.

    The statement sets search_path only when the tenant table has the schema name, so an unknown
    tenant is refused without a second round trip; django-tenants is then told the path is set
    (TENANT_LIMIT_SET_CALLS skips its own SET). On the driver's cursor, so that a SET pending for
    the previous schema is never sent first.
    """
    from django_tenants.utils import get_tenant_model

    db = _tenant_connection(using)
    model = get_tenant_model()
    quote = db.ops.quote_name
    paths = _search_path(tenant)
    sql = (
        f"SELECT set_config('search_path', %s, false) FROM {quote(public_schema())}."
        f"{quote(model._meta.db_table)} WHERE {quote(model._meta.get_field('schema_name').column)} = %s"
    )
    previous = (db.tenant, db.include_public_schema)
    db.set_schema(tenant)
    try:
        db.ensure_connection()
        with db.wrap_database_errors, db.connection.cursor() as cursor:
            cursor.execute(sql, [", ".join(quote(p) for p in paths), tenant])
            found = cursor.fetchone() is not None
    except BaseException:
        _leave(previous, using)
        raise
    if not found:
        _leave(previous, using)
        raise _unknown(tenant)
    db.search_path_set_schemas = paths


def _tenant_connection(using: str) -> Any:
    """The connection as django-tenants' DatabaseWrapper, which is untyped: set_schema, tenant and the
    other schema attributes it adds are not on Django's BaseDatabaseWrapper."""
    return connections[using]


def _leave(previous: tuple[Any, bool], using: str) -> None:
    """Put the connection back in the schema (tenant object and include_public) it was in."""
    db = _tenant_connection(using)
    tenant, include_public = previous
    if tenant is None:
        db.set_schema_to_public()
    else:
        db.set_tenant(tenant, include_public=include_public)


@contextmanager
def _switched(tenant: str, using: str) -> Iterator[None]:
    db = _tenant_connection(using)
    previous = (db.tenant, db.include_public_schema)
    _enter(tenant, using)
    try:
        yield
    finally:
        _leave(previous, using)


def tenant_scope(tenant: str | None, using: str = "default") -> AbstractContextManager[Any]:
    """A context manager that runs the body in the tenant's schema (nothing for tenant=None).

    A name that cannot be a tenant is refused when this is called; an unknown tenant when the
    block is entered, before its body (and so before anything of the run) starts. A connection
    already in that schema stays as it is: no query, no switch.
    """
    if tenant is None or (tenant and connection_schema(using) == tenant):
        return nullcontext()
    _check_name(tenant)
    return _switched(tenant, using)


@contextmanager
def public_scope(using: str = "default") -> Iterator[None]:
    """The body in the public schema, then back in the schema (tenant or not) the connection was in.

    For work that reads shared rows and picks its tenants itself (a schedule's fire): a connection
    left in a tenant's schema would otherwise make tenant=None mean that tenant.
    """
    schema = connection_schema(using)
    if schema is None or schema == public_schema():
        yield
        return
    db = _tenant_connection(using)
    previous = (db.tenant, db.include_public_schema)
    db.set_schema_to_public()
    try:
        yield
    finally:
        _leave(previous, using)


@contextmanager
def worker_scope(schema: str | None, using: str = "default") -> Iterator[None]:
    """A worker's task body: in the tenant's schema (checked on entry), then back in public.

    Whatever the previous task left, a run without tenant starts in the public schema; whatever this
    one does (including failing), the connection's search_path is public again afterwards.
    """
    if not tenants_enabled():
        validate_tenant(schema)  # with a schema: raises, tenancy is not configured
        yield
        return
    if schema is not None:
        _check_name(schema)
    db = _tenant_connection(using)
    db.set_schema_to_public()
    try:
        if schema is not None:
            _enter(schema, using)
        yield
    finally:
        db.set_schema_to_public()
        try:
            sync_search_path(using)
        except Exception:  # a broken connection is closed by the worker's tidy-up, path and all
            db.close()


def sync_search_path(using: str = "default") -> None:
    """Make the session's search_path match the connection's schema now.

    django-tenants sets search_path lazily, when Django next opens a cursor; statements sent on the
    driver's own cursors (prepared statements) must come after this, or they see the old schema.
    """
    if connection_schema(using) is None:
        return
    with connections[using].cursor():
        pass  # opening a Django cursor is what issues SET search_path


def tenant_schemas(using: str = "default") -> list[str]:
    """Every tenant's schema name (the public schema aside), sorted; TenantError without django-tenants."""
    if not tenants_enabled():
        raise TenantError("django-tenants is not in INSTALLED_APPS: there are no tenants")
    from django_tenants.utils import get_tenant_model

    return list(
        get_tenant_model().objects.using(using).exclude(schema_name=public_schema())
        .order_by("schema_name").values_list("schema_name", flat=True)
    )


def is_tenant_model(model: Any) -> bool:
    """Whether the model's table exists only in tenant schemas (its app is a tenant app, not shared)."""
    if not tenants_enabled():
        return False
    from django.conf import settings

    config = model._meta.app_config
    names = {config.name, f"{type(config).__module__}.{type(config).__name__}"}
    tenant_apps = set(getattr(settings, "TENANT_APPS", ()))
    shared_apps = set(getattr(settings, "SHARED_APPS", ()))
    return bool(names & tenant_apps) and not names & shared_apps


def refuse_public_run(workflow: Workflow, using: str = "default") -> None:
    """With django-tenants, refuse a run in the public schema whose nodes use a tenant-app model.

    Such a run would otherwise fail on a missing table at best, or silently read and write rows of
    a public table with the same name.
    """
    if not tenants_enabled() or current_schema(using) is not None:
        return
    for node_id in workflow.order:
        model = getattr(workflow.node_class(node_id), "model", None)
        if model is not None and is_tenant_model(model):
            raise TenantError(
                f"node '{node_id}' ({workflow.node(node_id).type}) uses {model._meta.label}, a model of "
                "a tenant app, and the run has no tenant: pass tenant='<schema name>' "
                "(refused instead of running in the public schema)"
            )
