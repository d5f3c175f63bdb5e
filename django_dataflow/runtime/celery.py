"""CeleryRuntime: runs recorded durably, executed exactly once by a Celery worker.

The submitting side writes the WorkflowRun row and sends the task (with a task id chosen up front)
only when the surrounding transaction commits. The worker side, perform(), is idempotent per run_id:

* a PostgreSQL advisory lock keyed by the run id is held while an attempt is live, so a redelivered
  message never runs beside a live attempt (it waits and tries again);
* the run is claimed with one conditional UPDATE (pending or running -> running, attempts + 1) that
  commits before the work, so a dead attempt stays counted;
* the nodes run in the one executor (runtime/executor.py) and the run is marked succeeded inside
  the same transaction as the data: a finished run can never run again, and a run whose worker died
  (its transaction rolled back) is re-executed from the start by the redelivered message.

Celery itself is imported lazily: without a broker (or without Celery installed) CeleryRuntime runs
the same perform() in this process, "eager mode".
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction

from django_dataflow import conf
from django_dataflow.celery import TASK_NAME
from django_dataflow.exceptions import (
    DataflowError,
    NodeExecutionError,
    PermissionDenied,
    RunCancelled,
    RunTimeout,
    WorkflowValidationError,
)
from django_dataflow.runtime.context import ProgressCallback, RunContext
from django_dataflow.runtime.local import as_workflow
from django_dataflow.runtime.permissions import check_permissions
from django_dataflow.tenancy import tenant_scope
from django_dataflow.workflow.builder import WorkflowBuilder
from django_dataflow.workflow.graph import Workflow
from django_dataflow.workflow.templating import check_inputs

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from django_dataflow.models import WorkflowDefinition, WorkflowRun

logger = logging.getLogger("django_dataflow.celery")

__all__ = ["TASK_NAME", "CeleryRuntime", "RunHandle", "is_eager", "is_transient", "perform"]

#: Runtime names written to WorkflowRun.runtime.
RUNTIME = "celery"
RUNTIME_EAGER = "celery-eager"

# SQLSTATEs worth another attempt: serialization failure, deadlock, lock timeout, the server
# shutting the session down (pg_terminate_backend, restarts), too many connections.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exceptions
#: Results up to this many bytes of JSON travel back in the task result too (larger: from the row).
INLINE_RESULTS_LIMIT = 64 * 1024
_BUSY_MAX_DELAY = 5.0
_MAX_DELAY = 60.0

_CONVERTIBLE = (dt.date, dt.time, dt.timedelta, decimal.Decimal, uuid.UUID)

# Progress of eager runs, readable from other threads while the run works.
_LOCAL_PROGRESS: dict[str, dict[str, Any]] = {}


# --------------------------------------------------------------------------- classification


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt could succeed: deadlock, serialization failure, lost connection.

    Validation errors, integrity errors and everything a retry would only repeat are not.
    """
    for err in _chain(exc):
        if isinstance(err, WorkflowValidationError):
            return False
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str) and state:
            return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)
        if isinstance(err, InterfaceError):
            return True  # Django's "connection already closed"
        if isinstance(err, OperationalError):
            cause = err.__cause__
            if "database is locked" in str(err).lower():
                return True  # SQLite's busy writer lock after the timeout
            # psycopg reports a dead connection (reset, server gone) without a SQLSTATE.
            if cause is not None and type(cause).__module__.startswith("psycopg"):
                return getattr(cause, "sqlstate", None) is None or is_transient(cause)
            return False
    return False


def retry_delay(retries: int) -> float:
    """Seconds before retry number retries + 1: exponential with jitter, capped at a minute."""
    base = conf.celery_retry_delay() * (2**retries)
    # Jitter spreads the retries of runs that deadlocked with each other.
    return min(_MAX_DELAY, base * random.uniform(0.75, 1.25))


def busy_delay(waits: int) -> float:
    """Seconds a duplicate delivery waits before looking at a run a live attempt holds."""
    return min(_BUSY_MAX_DELAY, 0.25 * (2**waits))


# --------------------------------------------------------------------------- the worker side


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
    except (model.DoesNotExist, ValueError) as exc:
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
) -> Outcome:
    """Execute a submitted run once, whatever the number of deliveries (see the module docstring).

    worker=True manages the connection like a request (Celery's worker); eager runs leave the
    caller's connection alone and pass the submitting user instead of reloading it.
    """
    from django_dataflow.runtime import records

    db = connections[using]
    if worker:
        _tidy_connection(db)
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
    ctx = RunContext(run_id=run_id, using=using, tenant=run.tenant or None, progress=progress)
    try:
        workflow = Workflow.from_dict(run.workflow)
        ctx.user = _load_user(run.user_id, using) if worker else user
    except DataflowError as exc:  # an invalid stored workflow or a vanished user: never retried
        records.mark_failed(run_id, using, exc)
        return Outcome("failed", run_id, error=exc)
    try:
        results = records.execute_recorded(
            workflow, ctx, run.inputs, run, claimed=True, record_failure=lambda e: not retrying(e),
            release_lock=None if lock is None else lock.key,
        )
    except DataflowError as exc:
        if retrying(exc):
            raise  # perform() schedules the retry; the row stays running
        return Outcome("failed", run_id, error=exc)
    except Exception as exc:
        # Outside any node (e.g. the COMMIT itself): if the commit did happen, the claim of the
        # next attempt sees "succeeded" and does nothing, so retrying is safe either way.
        if retrying(exc):
            raise
        _tidy_connection(connections[using])
        records.mark_failed(run_id, using, exc, ctx.stats)
        return Outcome("failed", run_id, error=exc)
    if lock is not None:
        lock.released = True  # by the statement that marked the run succeeded
    return Outcome("succeeded", run_id, results=results)


def perform_eagerly(run_id: str, using: str, user: Any = None) -> Outcome:
    """Eager mode: perform() in this process, sleeping through retries instead of rescheduling."""
    retries = waits = 0
    progress = ProgressThrottle(partial(_LOCAL_PROGRESS.__setitem__, run_id), interval=0.0)
    try:
        while True:
            outcome = perform(
                run_id, using, retries=retries, waits=waits, progress=progress, worker=False, user=user
            )
            if outcome.retry_in is None:
                return outcome
            retries, waits = outcome.retries, outcome.waits
            time.sleep(outcome.retry_in)
    finally:
        _LOCAL_PROGRESS.pop(run_id, None)


# --------------------------------------------------------------------------- the submitting side


def _json_inputs(value: Any, path: str = "inputs") -> Any:
    """Inputs as JSON; refuses what the worker could not get back (generators, model instances)."""
    from django_dataflow.nodes.values import jsonable

    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_inputs(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_inputs(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, _CONVERTIBLE):
        return jsonable(value)  # ISO text and strings, which fields convert back
    raise WorkflowValidationError(
        f"{path} is a {type(value).__name__}, which cannot be sent to a Celery worker as JSON"
    )


def celery_installed() -> bool:
    """Whether the celery package can be imported."""
    return find_spec("celery") is not None


def resolve_app(app: Any = None) -> Any:
    """The Celery app: the one given, DATAFLOW['CELERY_APP'], or Celery's current app."""
    if app is not None:
        return app
    if not celery_installed():
        raise ImproperlyConfigured(
            "CeleryRuntime needs Celery for a real broker: pip install 'django-dataflow[celery]'"
        )
    path = conf.celery_app_path()
    if path:
        from django.utils.module_loading import import_string

        return import_string(path)
    from celery import current_app

    return current_app._get_current_object()


def is_eager(app: Any = None) -> bool:
    """Whether CeleryRuntime runs in this process: forced by DATAFLOW['CELERY_EAGER'], else when no
    broker is configured (or the app has task_always_eager)."""
    forced = conf.celery_eager()
    if forced is not None:
        return forced
    if app is None and not celery_installed():
        if getattr(settings, "CELERY_BROKER_URL", None):
            raise ImproperlyConfigured(
                "CELERY_BROKER_URL is set but Celery is not installed: pip install 'django-dataflow[celery]'"
            )
        return True
    app = resolve_app(app)
    return not app.conf.broker_url or bool(app.conf.task_always_eager)


class RunHandle:
    """A submitted run: its ids, status, progress, result (wait) and cancellation."""

    def __init__(
        self, run_id: str, task_id: str, *, using: str, app: Any = None, eager: bool = False,
        dispatched: bool = True, user: Any = None, queue: str = "",
    ) -> None:
        self.run_id = run_id
        self.task_id = task_id
        self.using = using
        self.app = app
        self.eager = eager
        self.queue = queue
        self.dispatched = dispatched
        self._user = user

    def __repr__(self) -> str:
        return f"<RunHandle run_id={self.run_id} task_id={self.task_id or '-'}>"

    @classmethod
    def for_run(cls, run_id: str, *, using: str | None = None, app: Any = None) -> RunHandle:
        """A handle on a run submitted elsewhere (another request, process or earlier)."""
        from django_dataflow.models import WorkflowRun

        using = using or conf.database()
        run = WorkflowRun.objects.using(using).get(pk=run_id)
        eager = run.runtime != RUNTIME
        return cls(str(run.run_id), run.celery_task_id, using=using,
                   app=None if eager else resolve_app(app), eager=eager)

    # -- reading

    def record(self) -> WorkflowRun:
        """The run's WorkflowRun row, fresh from the database."""
        from django_dataflow.models import WorkflowRun

        run = WorkflowRun.objects.using(self.using).filter(pk=self.run_id).first()
        if run is None:
            raise DataflowError(
                f"run {self.run_id} does not exist: the transaction that submitted it rolled back, "
                "or the row was deleted"
            )
        return run

    def status(self) -> str:
        """pending, running, succeeded, failed or cancelled (the row's status)."""
        return self.record().status

    def progress(self) -> dict[str, Any] | None:
        """The latest {"node", "done", "total"} a bulk node reported, or None (not started/finished).

        Published outside the database (Celery task state), so it is readable while the run's
        transaction is still open.
        """
        if self.eager:
            return _LOCAL_PROGRESS.get(self.run_id)
        if not self.task_id or _backend_disabled(self.app):
            return None
        meta = self.app.backend.get_task_meta(self.task_id)
        if meta.get("status") == "PROGRESS" and isinstance(meta.get("result"), dict):
            return dict(meta["result"])
        return None

    # -- waiting

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """The run's results; its error re-raised as NodeExecutionError; RunTimeout after timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.dispatched and connections[self.using].in_atomic_block:
            self.record()  # a submission rolled back with its savepoint says so instead
            raise DataflowError(
                f"run {self.run_id} starts when the transaction that submitted it commits; wait() "
                "after the atomic block (in tests: django_capture_on_commit_callbacks(execute=True))"
            )
        task_state = None
        if not self.eager and self.task_id and not _backend_disabled(self.app):
            task_state, value = self._wait_for_task(deadline)
            if task_state == "SUCCESS" and isinstance(value, dict) and value.get("state") == "succeeded":
                if isinstance(value.get("results"), dict):
                    return value["results"]  # sent by the attempt that committed them
        delay = 0.005
        while True:
            run = self.record()
            if run.status == "succeeded":
                return run.results if run.results is not None else {}
            if run.status == "failed":
                raise self._error(run)
            if run.status == "cancelled":
                raise RunCancelled(f"run {self.run_id} was cancelled", run_id=self.run_id)
            if task_state == "FAILURE":
                raise DataflowError(
                    f"the worker task of run {self.run_id} failed outside the run "
                    f"(the run is left {run.status}); see the worker log"
                )
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RunTimeout(
                    f"run {self.run_id} is still {run.status} after {timeout}s",
                    run_id=self.run_id, status=run.status,
                )
            time.sleep(delay if remaining is None else min(delay, remaining))
            delay = min(delay * 1.5, 0.5)

    def _wait_for_task(self, deadline: float | None) -> tuple[str | None, Any]:
        """Block on the result backend (push, not polling) until the task reports a final state."""
        from celery.exceptions import TimeoutError as CeleryTimeout

        result = self.app.AsyncResult(self.task_id)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            value = result.get(timeout=remaining, propagate=False, interval=0.05, disable_sync_subtasks=False)
        except CeleryTimeout:
            return None, None  # the row decides; the loop in wait() raises RunTimeout
        except Exception:  # a result the backend cannot rebuild: the row holds the truth
            logger.debug("reading the task result of run %s failed", self.run_id, exc_info=True)
            return None, None
        return result.state, value

    def _error(self, run: WorkflowRun) -> NodeExecutionError:
        from django_dataflow import exceptions

        cls = getattr(exceptions, run.error_type, None)
        if not (isinstance(cls, type) and issubclass(cls, NodeExecutionError)):
            cls = NodeExecutionError
        node_type = next(
            (n.get("type") for n in run.workflow.get("nodes", []) if n.get("id") == run.error_node), None
        )
        message = run.error
        prefix = f"node '{run.error_node}'" + (f" ({node_type})" if node_type else "") + " failed: "
        if run.error_node and message.startswith(prefix):
            message = message[len(prefix):]
        return cls(message, node_id=run.error_node or None, node_type=node_type, run_id=self.run_id)

    # -- cancelling

    def cancel(self) -> bool:
        """Cancel the run if no worker has started it; False when it already started or finished."""
        from django_dataflow.runtime import records

        cancelled = records.cancel_run(self.run_id, self.using)
        if cancelled and not self.eager and self.task_id:
            try:  # saves the worker a delivery; the status check is what guarantees it never runs
                self.app.control.revoke(self.task_id)
            except Exception:
                logger.warning("could not revoke task %s of run %s", self.task_id, self.run_id, exc_info=True)
        return cancelled

    # -- sending (called by transaction.on_commit)

    def _dispatch(self) -> None:
        self.dispatched = True
        if self.eager:
            perform_eagerly(self.run_id, self.using, user=self._user)
            return
        from django_dataflow import tasks  # noqa: F401  (registers the task with every Celery app)

        try:
            self.app.tasks[TASK_NAME].apply_async(
                kwargs={"run_id": self.run_id, "using": self.using}, task_id=self.task_id, queue=self.queue
            )
        except Exception as exc:
            # The row is committed: say why it will never run instead of leaving it pending.
            from django_dataflow.runtime import records

            records.mark_failed(self.run_id, self.using, exc)
            raise


def _backend_disabled(app: Any) -> bool:
    from celery.backends.base import DisabledBackend

    return isinstance(app.backend, DisabledBackend)


class CeleryRuntime:
    """Sends workflows to Celery workers (eagerly in process when no broker is configured)."""

    def __init__(self, queue: str | None = None, *, using: str | None = None, app: Any = None) -> None:
        self.queue = queue
        self.using = using
        self._app = app

    def submit(
        self,
        workflow: Workflow | WorkflowBuilder | Mapping[str, Any] | WorkflowDefinition,
        inputs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        user: Any = None,
    ) -> RunHandle:
        """Record the run and send it when the current transaction commits; returns its handle."""
        from django_dataflow.models import WorkflowDefinition
        from django_dataflow.runtime import records

        definition = workflow if isinstance(workflow, WorkflowDefinition) else None
        built = definition.build() if definition is not None else as_workflow(workflow)
        data = built.to_dict()  # strict: exactly what the worker rebuilds, refused up front if lossy
        inputs = {} if inputs is None else dict(inputs)
        check_inputs(set(built.input_names), inputs)
        payload = _json_inputs(inputs)
        if user is not None and getattr(user, "pk", None) is None:
            raise PermissionDenied("CeleryRuntime needs a saved user (the worker reloads it by primary key)")
        check_permissions(built, user)
        tenant_scope(tenant)  # an unknown tenant fails here, before any row exists
        using = self.using or conf.database()
        eager = is_eager(self._app)
        app = None if eager else resolve_app(self._app)
        ctx = RunContext(run_id=str(uuid.uuid4()), using=using, tenant=tenant, user=user)
        task_id = "" if eager else str(uuid.uuid4())
        records.create_run(
            built, ctx, payload, runtime=RUNTIME_EAGER if eager else RUNTIME, task_id=task_id,
            workflow_dict=data, definition=definition.name if definition else "",
            definition_version=definition.version if definition else None,
        )
        handle = RunHandle(
            ctx.run_id, task_id, using=using, app=app, eager=eager, dispatched=False, user=user,
            queue=self.queue or conf.celery_queue(),
        )
        # Celery's apply_async_on_commit, on the run's own database: a worker never looks for a
        # row that is not committed, and a rolled-back submission sends nothing.
        transaction.on_commit(handle._dispatch, using=using)
        return handle

    def execute(
        self,
        workflow: Workflow | WorkflowBuilder | Mapping[str, Any] | WorkflowDefinition,
        inputs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        user: Any = None,
        *,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], str]:
        """submit() + wait(): (results by node id, run id), like LocalRuntime.execute."""
        handle = self.submit(workflow, inputs, tenant, user)
        return handle.wait(timeout), handle.run_id

    def handle(self, run_id: str) -> RunHandle:
        """A handle on an earlier run, by id."""
        return RunHandle.for_run(run_id, using=self.using, app=self._app)
