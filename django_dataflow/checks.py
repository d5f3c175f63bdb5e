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
