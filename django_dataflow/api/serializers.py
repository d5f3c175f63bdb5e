"""WorkflowRun rows as the API's JSON: the run (whole or as a list's summary), and its events and
progress."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse

from django_dataflow.models import RunStatus, WorkflowRun


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_error(run: WorkflowRun) -> dict[str, Any] | None:
    """A failed run's error in the API's error shape (without the outer "error" key)."""
    if run.status != RunStatus.FAILED:
        return None
    return {
        "type": run.error_type or "NodeExecutionError",
        "message": run.error,
        "node_id": run.error_node or None,
        "details": None,
    }


def links(run_id: str) -> dict[str, str]:
    """URLs of the run's resources."""
    return {
        "self": reverse("django_dataflow_api:run", args=[run_id]),
        "events": reverse("django_dataflow_api:run-events", args=[run_id]),
        "cancel": reverse("django_dataflow_api:run-cancel", args=[run_id]),
    }


def run_summary(run: WorkflowRun) -> dict[str, Any]:
    """A run as GET runs/ lists it: everything GET runs/<id> shows but the inputs and results."""
    run_id = str(run.run_id)
    return {
        "run_id": run_id,
        "status": run.status,
        "definition": run.definition or None,
        "definition_version": run.definition_version,
        "tenant": run.tenant or None,
        "runtime": run.runtime,
        "error": run_error(run),
        "node_stats": run.node_stats or {},
        "attempts": run.attempts,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration": run.duration,
        "links": links(run_id),
    }


def run_json(run: WorkflowRun) -> dict[str, Any]:
    """GET runs/<id>: the run's summary with its inputs and, once it succeeded, its results."""
    return {
        **run_summary(run),
        "inputs": run.inputs,
        "results": run.results if run.status == RunStatus.SUCCEEDED else None,
    }


def events_json(run: WorkflowRun, progress: dict[str, Any] | None) -> dict[str, Any]:
    """GET runs/<id>/events: the run's life so far as a list of events, and live progress.

    Per-node events come from node_stats, which the run writes in its own transaction: they appear
    all at once when the run commits. Live progress (a bulk node's rows done) is published outside
    the database while the run is open.
    """
    events: list[dict[str, Any]] = [{"type": "created", "at": _iso(run.created_at)}]
    if run.started_at is not None:
        events.append({"type": "started", "at": _iso(run.started_at), "attempt": run.attempts})
    for node_id, stats in (run.node_stats or {}).items():
        events.append({
            "type": "node_finished", "node_id": node_id,
            "seconds": stats.get("seconds"), "rows": stats.get("rows"),
        })
    if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        final: dict[str, Any] = {"type": str(run.status), "at": _iso(run.finished_at)}
        if run.status == RunStatus.FAILED:
            final["error"] = run_error(run)
        events.append(final)
    return {
        "run_id": str(run.run_id),
        "status": run.status,
        "finished": run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED),
        "progress": progress,
        "events": events,
    }
