"""System checks: configuration errors with stable ids (django_dataflow.E001...)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from django_dataflow import conf


@checks.register("django_dataflow")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 unknown key, E002 wrong type, E003 bad value (E004, an unknown model, stops start-up)."""
    raw = conf.raw_settings()
    messages: list[checks.CheckMessage] = [
        checks.Error(problem.message, id=problem.id, obj=conf.SETTING_NAME)
        for problem in conf.find_problems(raw)
    ]
    return messages


@checks.register("django_dataflow")
def check_sqlite_journal(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001: the workflow database is SQLite without WAL (about 7x slower commits)."""
    if conf.find_problems(conf.raw_settings()):
        return []
    alias = conf.database()
    database = settings.DATABASES.get(alias, {})
    if "sqlite" not in database.get("ENGINE", ""):
        return []
    init = str(database.get("OPTIONS", {}).get("init_command", "")).lower().replace(" ", "")
    if "journal_mode=wal" in init:
        return []
    return [
        checks.Warning(
            f"Database {alias!r} is SQLite without WAL mode; every workflow commit pays a full sync.",
            hint='Set OPTIONS={"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}.',
            id="django_dataflow.W001",
        )
    ]


@checks.register("django_dataflow")
def check_model_drift(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W101-W104 drift of registered models; I101/I102 when the database or registry table is missing.

    Runs with manage.py check and every command that checks, never during django.setup(); an
    unreachable database or an unmigrated registry table is reported as information, not an error.
    """
    if conf.find_problems(conf.raw_settings()):
        return []
    from django_dataflow.schema_registry.drift import find_drift

    labels = None if app_configs is None else [config.label for config in app_configs]
    return [
        (checks.Warning if finding.is_drift else checks.Info)(
            finding.text(), hint=finding.hint or None, obj=finding.obj, id=finding.id
        )
        for finding in find_drift(labels)
    ]


@checks.register("django_dataflow")
def check_statement_timeout(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W002: STATEMENT_TIMEOUT_MS is set but the workflow database is not PostgreSQL (it is ignored)."""
    if conf.find_problems(conf.raw_settings()) or conf.statement_timeout_ms() is None:
        return []
    alias = conf.database()
    engine = settings.DATABASES.get(alias, {}).get("ENGINE", "")
    if "postgresql" in engine:
        return []
    return [
        checks.Warning(
            f"DATAFLOW['STATEMENT_TIMEOUT_MS'] is set but database {alias!r} is not PostgreSQL; "
            "runs there have no statement timeout.",
            hint="Remove the setting, or bound runs another way (e.g. SQLite's busy timeout only waits).",
            id="django_dataflow.W002",
        )
    ]


ROUTER = "django_dataflow.tenant_router.DataflowTenantRouter"
TENANT_SYNC_ROUTER = "django_tenants.routers.TenantSyncRouter"


def tenancy_messages(config: Any, alias: str) -> list[checks.CheckMessage]:
    """E020-E022, W020 for a django-tenants project's settings (config: the settings object)."""
    messages: list[checks.CheckMessage] = []
    engine = config.DATABASES.get(alias, {}).get("ENGINE", "")
    if "django_tenants" not in engine:
        messages.append(checks.Error(
            f"django-tenants is installed but database {alias!r} uses {engine!r}; runs could not switch "
            "to a tenant's schema.",
            hint='Set its ENGINE to "django_tenants.postgresql_backend" (docs/tenants.md).',
            id="django_dataflow.E020",
        ))
    shared, tenant = getattr(config, "SHARED_APPS", ()), getattr(config, "TENANT_APPS", ())
    missing = [name for name, apps_ in (("SHARED_APPS", shared), ("TENANT_APPS", tenant))
               if "django_dataflow" not in apps_]
    if missing:
        messages.append(checks.Error(
            f"django_dataflow is not in {' and '.join(missing)}: runs without tenant are recorded in the "
            "public schema and each tenant's runs in its own, so it must be in both.",
            hint="List django_dataflow in SHARED_APPS and in TENANT_APPS (docs/tenants.md).",
            id="django_dataflow.E021",
        ))
    routers = [r if isinstance(r, str) else f"{type(r).__module__}.{type(r).__name__}"
               for r in getattr(config, "DATABASE_ROUTERS", ())]
    if ROUTER not in routers or (
        TENANT_SYNC_ROUTER in routers and routers.index(ROUTER) > routers.index(TENANT_SYNC_ROUTER)
    ):
        messages.append(checks.Error(
            f"DATABASE_ROUTERS must list {ROUTER} before {TENANT_SYNC_ROUTER}: without it every "
            "tenant's schema gets its own registry and definitions tables, which nothing reads.",
            hint=f'DATABASE_ROUTERS = ["{ROUTER}", "{TENANT_SYNC_ROUTER}"]',
            id="django_dataflow.E022",
        ))
    if getattr(config, "TENANT_LIMIT_SET_CALLS", False) is not True:
        messages.append(checks.Warning(
            "TENANT_LIMIT_SET_CALLS is not True: django-tenants sends SET search_path before every "
            "statement of every run, tenant or not.",
            hint="TENANT_LIMIT_SET_CALLS = True (the schema is set again whenever it changes).",
            id="django_dataflow.W020",
        ))
    return messages


@checks.register("django_dataflow")
def check_tenancy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E020-E022, W020: django-tenants is installed but not set up the way runs need it."""
    from django_dataflow.tenancy import tenants_enabled

    if conf.find_problems(conf.raw_settings()) or not tenants_enabled():
        return []
    return tenancy_messages(settings, conf.database())


#: Cache backends private to one process: another process's writes cannot invalidate their entries.
_PROCESS_LOCAL_CACHES = ("LocMemCache", "DummyCache")


@checks.register("django_dataflow")
def check_cache_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W030: DATAFLOW['CACHE'] uses a cache private to each process (local memory, dummy)."""
    if conf.find_problems(conf.raw_settings()):
        return []
    cache = conf.cache_settings()
    if cache is None:
        return []
    backend = str(settings.CACHES.get(cache.alias, {}).get("BACKEND", ""))
    if not backend.endswith(_PROCESS_LOCAL_CACHES):
        return []
    return [
        checks.Warning(
            f"DATAFLOW['CACHE'] uses cache {cache.alias!r} ({backend}), which each process keeps "
            "for itself: writes by other processes (workers, other servers) cannot invalidate it.",
            hint="Point DATAFLOW['CACHE']['ALIAS'] at a django-redis cache (docs/caching.md).",
            id="django_dataflow.W030",
        )
    ]


@checks.register("django_dataflow")
def check_trigger_definitions(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W070: an on_commit_of() trigger or a follow-up names a workflow definition that does not exist.

    A warning, not an error: definitions are rows, often created after deploy (admin, data migration).
    An unreachable database or an unmigrated table says nothing, like the drift check.
    """
    if conf.find_problems(conf.raw_settings()):
        return []
    from django_dataflow.models import WorkflowDefinition
    from django_dataflow.triggers.model_events import registered

    try:
        rows = list(
            WorkflowDefinition.objects.using(conf.database()).values_list("name", "on_success", "on_failure")
        )
    except Exception:  # a check must never break start-up (no database, no table, no access)
        return []
    known = {name for name, _s, _f in rows}
    wanted = [(f"trigger {t.label} {t.event}", t.definition) for t in registered()]
    for name, on_success, on_failure in rows:
        wanted += [(f"definition {name!r} on_success", n) for n in on_success or ()]
        wanted += [(f"definition {name!r} on_failure", n) for n in on_failure or ()]
    return [
        checks.Warning(
            f"{where} names workflow definition {missing!r}, which does not exist; it will not start.",
            hint="Create the definition, or fix the name.",
            id="django_dataflow.W070",
        )
        for where, missing in sorted(set(wanted))
        if missing not in known
    ]


@checks.register("django_dataflow")
def check_stored_trigger_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W071: an enabled stored trigger (ModelTriggerRule) watches a model this application does not
    register, so it fires nothing here (rows are shared by every application using the database).

    An unreachable database or an unmigrated table says nothing, like W070.
    """
    if conf.find_problems(conf.raw_settings()):
        return []
    from django_dataflow.models import ModelTriggerRule
    from django_dataflow.registry import get_entry

    try:
        rows = list(ModelTriggerRule.objects.using(conf.database()).filter(enabled=True)
                    .values_list("pk", "model", "event"))
    except Exception:  # a check must never break start-up (no database, no table, no access)
        return []
    return [
        checks.Warning(
            f"stored trigger {pk} ({label} {event}) watches a model that is not registered with "
            "django_dataflow in this application; it does not fire here.",
            hint="Register the model, or disable or delete the row (admin: Model triggers).",
            id="django_dataflow.W071",
        )
        for pk, label, event in rows
        if get_entry(label) is None
    ]


@checks.register("django_dataflow")
def check_api_rate_limit_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E041: API_RATE_LIMIT with a cache that stores nothing; W040: with a per-process cache."""
    if conf.find_problems(conf.raw_settings()) or conf.api_rate_limit() is None:
        return []
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if backend.endswith("DummyCache"):
        return [
            checks.Error(
                "DATAFLOW['API_RATE_LIMIT'] is set but the default cache is DummyCache, which stores "
                "nothing: no request would ever be counted.",
                hint="Use a shared cache (django-redis, memcached or the database cache).",
                id="django_dataflow.E041",
            )
        ]
    if backend.endswith("LocMemCache"):
        return [
            checks.Warning(
                "DATAFLOW['API_RATE_LIMIT'] is counted in a local-memory cache: each server process "
                "counts its own requests, so a user may make the limit times the process count.",
                hint="Use a shared cache (django-redis, memcached or the database cache).",
                id="django_dataflow.W040",
            )
        ]
    return []
