"""Runs whose broker message was lost: pending Celery runs older than a bound, sent once more.

A run row commits before its message is sent (on_commit), so a broker that loses the message (a
Redis restart without persistence, a send that failed after the commit) leaves the run pending
for ever. Sending the message again is always safe: the worker's claim and advisory lock run a
run exactly once, so a message that was only slow, not lost, makes the second delivery a no-op.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.utils import timezone

from django_dataflow import tenancy
from django_dataflow.models import RunStatus, WorkflowRun
from django_dataflow.runtime.broker import RUNTIME
from django_dataflow.runtime.handle import RunHandle


class Resent(NamedTuple):
    """One pending run and what sending it again did: None when sent, else the error."""

    run_id: str
    created_at: Any
    error: BaseException | None
    tenant: str | None = None


def stale_pending_runs(using: str, older_than: float) -> QuerySet[WorkflowRun]:
    """Celery runs still pending older_than seconds after they were submitted, oldest first."""
    if older_than < 0:
        raise ValueError(f"older_than must be at least 0 seconds, not {older_than}")
    cutoff = timezone.now() - timedelta(seconds=older_than)
    return (
        WorkflowRun.objects.using(using)
        .filter(runtime=RUNTIME, status=RunStatus.PENDING, created_at__lte=cutoff)
        .order_by("created_at")
    )


def resend_stale_runs(
    using: str, older_than: float, *, queue: str = "", app: Any = None, limit: int | None = None,
    dry_run: bool = False, tenant: str | None = None,
) -> list[Resent]:
    """Send the task message of every stale pending run again; one failed send stops nothing.

    tenant: the schema whose runs to look at (with django-tenants every tenant records its own).
    """
    with tenancy.tenant_scope(tenant, using):
        stale = stale_pending_runs(using, older_than).only("run_id", "created_at")
        runs = list(stale if limit is None else stale[:limit])
        outcomes: list[Resent] = []
        for run in runs:
            error = None
            if not dry_run:
                try:
                    RunHandle.for_run(
                        str(run.run_id), using=using, app=app, tenant=tenant, queue=queue
                    ).send()
                except Exception as exc:  # reported per run: the others are still worth sending
                    error = exc
            outcomes.append(Resent(str(run.run_id), run.created_at, error, tenant))
    return outcomes
