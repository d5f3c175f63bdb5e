"""health(): whether this process can do its work, as JSON a load balancer can read.

Checks: the workflow database answers, the result cache answers (when DATAFLOW['CACHE'] is set),
Celery workers answer a ping (when a broker is configured) and no migration is pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow import cache_store, conf

__all__ = ["health"]


def health() -> dict[str, Any]:
    """{"ok": bool, "checks": {name: {"ok": bool, "detail": str, "seconds": float}}}; a check that
    does not apply (no cache, no broker) is ok with detail 'not configured'."""
    checks = {
        "database": _timed(_database),
        "cache": _timed(_cache),
        "celery": _timed(_celery),
        "migrations": _timed(_migrations),
    }
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}


def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # any failure is the answer
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return {"ok": ok, "detail": detail, "seconds": round(time.perf_counter() - started, 4)}


def _database() -> str:
    alias = conf.database()
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"database {alias!r} answered"


def _cache() -> str:
    settings = conf.cache_settings()
    if settings is None:
        return "not configured"
    cache_store.ping(settings.alias)
    return f"cache {settings.alias!r} answered"


def _celery() -> str:
    from django_dataflow.runtime.broker import celery_installed, is_eager, resolve_app

    if not celery_installed():
        return "not configured"
    app = resolve_app()
    if is_eager(app):
        return "not configured (runs are eager, in process)"
    timeout = conf.health_timeout()
    replies = _within(lambda: app.control.ping(timeout=timeout), timeout * 2, "the Celery broker")
    if not replies:
        raise RuntimeError(f"no Celery worker answered within {conf.health_timeout()}s")
    return f"{len(replies)} worker(s) answered"


def _within(call: Callable[[], Any], seconds: float, what: str) -> Any:
    """call() in a thread, given up after seconds (a broker that is down retries its connection)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:  # re-raised below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="dataflow-health")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not answer within {seconds:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _migrations() -> str:
    from django.db.migrations.executor import MigrationExecutor

    alias = conf.database()
    executor = MigrationExecutor(connections[alias or DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        raise RuntimeError(f"{len(plan)} migration(s) not applied: {names}")
    return "none pending"
