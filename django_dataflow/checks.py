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
