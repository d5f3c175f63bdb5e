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
