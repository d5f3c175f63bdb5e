"""The worker side of CeleryRuntime: perform() executes a submitted run exactly once.

perform() is idempotent per run_id:

* a PostgreSQL advisory lock keyed by the run id is held while an attempt is live, so a redelivered
  message never runs beside a live attempt (it waits and tries again);
* the run is claimed with one conditional UPDATE (pending or running -> running, attempts + 1) that
  commits before the work, so a dead attempt stays counted;
* the nodes run in the one executor (runtime/executor.py) and the run is marked succeeded inside
  the same transaction as the data: a finished run can never run again, and a run whose worker died
  (its transaction rolled back) is re-executed from the start by the redelivered message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from django_dataflow import conf, tenancy
from django_dataflow.exceptions import DataflowError, PermissionDenied
from django_dataflow.runtime.context import ProgressCallback, RunContext
from django_dataflow.runtime.retries import busy_delay, is_transient, retry_delay
from django_dataflow.triggers import chains
from django_dataflow.workflow.graph import Workflow

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from django_dataflow.models import WorkflowRun

logger = logging.getLogger("django_dataflow.celery")

#: Results up to this many bytes of JSON travel back in the task result too (larger: from the row).
INLINE_RESULTS_LIMIT = 64 * 1024

#: Progress of eager runs, readable from other threads while the run works.
LOCAL_PROGRESS: dict[str, dict[str, Any]] = {}


class Outcome(NamedTuple):
    """What one delivery of a run did; the task turns it into a return, a retry or a failure."""

    state: str  # succeeded, failed, skipped (already finished), busy (live attempt), retry
    run_id: str
    retry_in: float | None = None
    retries: int = 0
    waits: int = 0
    error: BaseException | None = None
    results: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The task's result: state, plus the run's results when small (saving wait() a query)."""
        summary: dict[str, Any] = {"run_id": self.run_id, "state": self.state}
        if self.results is not None:
            text = json.dumps(self.results, separators=(",", ":"))
            if len(text) <= INLINE_RESULTS_LIMIT:
                summary["results"] = self.results
        return summary


class ProgressThrottle:
    """Forwards node progress at most every interval seconds (always the first and the last)."""

    def __init__(self, publish: Callable[[dict[str, Any]], None], interval: float | None = None) -> None:
        self.publish = publish
        self.interval = conf.celery_progress_interval() if interval is None else interval
        self._last = 0.0
        self._node = ""

    def __call__(self, node_id: str, done: int, total: int | None) -> None:
        """Called by RunContext.report for every chunk."""
        now = time.monotonic()
        final = total is not None and done >= total
        if node_id == self._node and not final and now - self._last < self.interval:
            return
        self._node, self._last = node_id, now
        try:
            self.publish({"node": node_id, "done": done, "total": total})
        except Exception:  # progress is best effort; it must never fail the run
            logger.warning("could not publish progress of node %s", node_id, exc_info=True)


def lock_key(run_id: str) -> int:
    """The signed 64-bit advisory lock key of a run."""
    return int.from_bytes(uuid.UUID(str(run_id)).bytes[:8], "big", signed=True)


class AdvisoryLock:
    """The run's PostgreSQL session advisory lock, held while an attempt is live.

    A session lock outlives the claim's commit and dies with the connection, so a worker killed
    mid-run releases it as soon as PostgreSQL notices; a redelivered message meanwhile finds it
    taken and waits instead of running beside the live attempt.
    """

    def __init__(self, db: BaseDatabaseWrapper, key: int) -> None:
        self.db = db
        self.key = key
        self.raw = db.connection
        self.released = False

    def release(self) -> None:
        """Unlock unless already released (in the success statement) or lost with its session."""
        if self.released or self.db.connection is not self.raw or self.raw is None:
            return
        self.released = True
        try:
            with self.db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        except DatabaseError:
            pass  # the session is gone, and the lock with it


def _first_statement(db: BaseDatabaseWrapper, call: Callable[[], Any]) -> Any:
    """Run the first statement of a task, reconnecting once if the kept connection died idle.

    Nothing has happened yet, so repeating it is safe; this is what lets CELERY_DB_REUSE_MAX keep
    connections without a health-check query per task.
    """
    try:
        return call()
    except (OperationalError, InterfaceError):
        if db.in_atomic_block:
            raise
        logger.info("database connection %r was dropped while idle; reconnecting", db.alias)
        db.close()
        return call()


def _tidy_connection(db: BaseDatabaseWrapper) -> None:
    # What Django does around every request: drop a broken or expired (CONN_MAX_AGE) connection.
    if not db.in_atomic_block:
        db.close_if_unusable_or_obsolete()


def _load_user(user_id: str, using: str) -> Any:
    if not user_id:
        return None
    from django.contrib.auth import get_user_model

    model = get_user_model()
    try:
        return model._default_manager.db_manager(using).get(pk=user_id)
    except (model.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise PermissionDenied(f"the user who submitted the run (pk {user_id!r}) no longer exists") from exc


def perform(
    run_id: str,
    using: str,
    *,
    retries: int = 0,
    waits: int = 0,
    progress: ProgressCallback | None = None,
    worker: bool = True,
    user: Any = None,
    schema: str | None = None,
) -> Outcome:
    """Execute a submitted run once, whatever the number of deliveries (see the module docstring).

    worker=True manages the connection like a request (Celery's worker); eager runs leave the
    caller's connection alone and pass the submitting user instead of reloading it. schema: the
    tenant the run was submitted for; the run's row is in that schema, and the worker switches to
    it before its first statement and back to the public schema after its last, also on failure.
    """
    db = connections[using]
    with ExitStack() as stack:
        if worker:
            _tidy_connection(db)
            # Entering a tenant's schema is the task's first statement: reconnect-safe.
            _first_statement(db, lambda: stack.enter_context(tenancy.worker_scope(schema, using)))
        else:
            stack.enter_context(tenancy.tenant_scope(schema, using))
        return _perform(run_id, using, db, retries, waits, progress, worker, user, schema)


def _perform(
    run_id: str, using: str, db: BaseDatabaseWrapper, retries: int, waits: int,
    progress: ProgressCallback | None, worker: bool, user: Any, schema: str | None,
) -> Outcome:
    from django_dataflow.runtime import records

    may_retry = worker or not db.in_atomic_block

    def retrying(exc: BaseException) -> bool:
        return may_retry and retries < conf.celery_max_retries() and is_transient(exc)

    lock: AdvisoryLock | None = None
    try:
        if db.vendor == "postgresql":
            key = lock_key(run_id)
            held, run = _first_statement(db, lambda: records.lock_and_claim_run(run_id, using, key))
            if not held:
                return Outcome("busy", run_id, retry_in=busy_delay(waits), retries=retries, waits=waits + 1)
            lock = AdvisoryLock(db, key)
        else:
            # SQLite has one writer at a time, which serialises attempts without a lock.
            run = _first_statement(db, lambda: records.claim_run(run_id, using))
        if run is None:
            return Outcome("skipped", run_id)
        if (run.tenant or None) != schema:
            # A row of one tenant's table claiming another tenant: never run it as either.
            error = tenancy.TenantError(
                f"run {run_id} names tenant {run.tenant!r} but was delivered for schema {schema!r}"
            )
            records.mark_failed(run_id, using, error)
            return Outcome("failed", run_id, error=error)
        return _perform_claimed(run, using, retrying, progress, worker, user, lock)
    except Exception as exc:
        if retrying(exc):
            logger.warning("run %s: transient database error, retrying: %s", run_id, exc)
            return Outcome("retry", run_id, retry_in=retry_delay(retries), retries=retries + 1, error=exc)
        raise
    finally:
        if lock is not None:
            lock.release()
        if worker:
            _tidy_connection(db)


def _perform_claimed(
    run: WorkflowRun, using: str, retrying: Callable[[BaseException], bool],
    progress: ProgressCallback | None, worker: bool, user: Any, lock: AdvisoryLock | None,
) -> Outcome:
    from django_dataflow.runtime import records

    run_id = str(run.run_id)
    ctx = RunContext(
        run_id=run_id, using=using, tenant=run.tenant or None, progress=progress,
        definition=run.definition, chain_depth=run.chain_depth, trigger=run.trigger,
    )
    try:
        workflow = Workflow.from_dict(run.workflow)
        ctx.user = _load_user(run.user_id, using) if worker else user
    except DataflowError as exc:  # an invalid stored workflow or a vanished user: never retried
        records.mark_failed(run_id, using, exc)
        chains.after_failure(ctx, exc)
        return Outcome("failed", run_id, error=exc)
    try:
        results = records.execute_recorded(
            workflow, ctx, run.inputs, run, claimed=True, record_failure=lambda e: not retrying(e),
            release_lock=None if lock is None else lock.key, on_success=chains.after_success,
        )
    except DataflowError as exc:
        if retrying(exc):
            raise  # perform() schedules the retry; the row stays running
        chains.after_failure(ctx, exc)
        return Outcome("failed", run_id, error=exc)
    except Exception as exc:
        # Outside any node (e.g. the COMMIT itself): if the commit did happen, the claim of the
        # next attempt sees "succeeded" and does nothing, so retrying is safe either way.
        if retrying(exc):
            raise
        _tidy_connection(connections[using])
        records.mark_failed(run_id, using, exc, ctx.stats)
        chains.after_failure(ctx, exc)
        return Outcome("failed", run_id, error=exc)
    if lock is not None:
        lock.released = True  # by the statement that marked the run succeeded
    return Outcome("succeeded", run_id, results=results)


def perform_eagerly(run_id: str, using: str, user: Any = None, schema: str | None = None) -> Outcome:
    """Eager mode: perform() in this process, sleeping through retries instead of rescheduling."""
    retries = waits = 0
    progress = ProgressThrottle(partial(LOCAL_PROGRESS.__setitem__, run_id), interval=0.0)
    try:
        while True:
            outcome = perform(
                run_id, using, retries=retries, waits=waits, progress=progress, worker=False, user=user,
                schema=schema,
            )
            if outcome.retry_in is None:
                return outcome
            retries, waits = outcome.retries, outcome.waits
            time.sleep(outcome.retry_in)
    finally:
        LOCAL_PROGRESS.pop(run_id, None)
