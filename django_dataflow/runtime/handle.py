"""RunHandle: a submitted run's ids, status, progress, result (wait) and cancellation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import connections

from django_dataflow import conf, tenancy
from django_dataflow.celery import TASK_NAME
from django_dataflow.exceptions import DataflowError, NodeExecutionError, RunCancelled, RunTimeout
from django_dataflow.runtime.broker import RUNTIME, backend_disabled, resolve_app
from django_dataflow.runtime.worker import LOCAL_PROGRESS, perform_eagerly

if TYPE_CHECKING:
    from django_dataflow.models import WorkflowRun

logger = logging.getLogger("django_dataflow.celery")

#: wait(on_update=...): called with the run's fresh row and its live progress (progress() while
#: the run is running, else None) each time either changed.
OnUpdate = Callable[["WorkflowRun", "dict[str, Any] | None"], None]


class RunHandle:
    """A submitted run: its ids, status, progress, result (wait) and cancellation."""

    def __init__(
        self, run_id: str, task_id: str, *, using: str, app: Any = None, eager: bool = False,
        dispatched: bool = True, user: Any = None, queue: str = "", tenant: str | None = None,
    ) -> None:
        self.run_id = run_id
        #: The run's tenant schema (None: no tenant); its row lives in that schema.
        self.tenant = tenant
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
    def for_run(
        cls, run_id: str, *, using: str | None = None, app: Any = None, tenant: str | None = None,
        queue: str = "",
    ) -> RunHandle:
        """A handle on a run submitted elsewhere (another request, process or earlier).

        tenant=None looks in the schema the connection is in (django-tenants' middleware's tenant).
        queue: where send() sends (the row does not record the queue; default DATAFLOW['CELERY_QUEUE']).
        """
        from django_dataflow.models import WorkflowRun

        using = using or conf.database()
        tenant = tenancy.resolve_tenant(tenant, using)
        with tenancy.tenant_scope(tenant, using):
            run = WorkflowRun.objects.using(using).get(pk=run_id)
        return cls.for_record(run, using=using, app=app, tenant=tenant, queue=queue)

    @classmethod
    def for_record(
        cls, run: WorkflowRun, *, using: str | None = None, app: Any = None, tenant: str | None = None,
        queue: str = "",
    ) -> RunHandle:
        """A handle on a run whose WorkflowRun row was already read (tenant=None: the row's tenant)."""
        eager = run.runtime != RUNTIME
        return cls(str(run.run_id), run.celery_task_id, using=using or conf.database(),
                   app=None if eager else resolve_app(app), eager=eager,
                   tenant=tenant if tenant is not None else (run.tenant or None), queue=queue)

    # -- reading

    def record(self) -> WorkflowRun:
        """The run's WorkflowRun row, fresh from the database."""
        from django_dataflow.models import WorkflowRun

        with tenancy.tenant_scope(self.tenant, self.using):
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
            return LOCAL_PROGRESS.get(self.run_id)
        if not self._has_task_state():
            return None
        meta = self.app.backend.get_task_meta(self.task_id)
        if meta.get("status") == "PROGRESS" and isinstance(meta.get("result"), dict):
            return dict(meta["result"])
        return None

    def live_progress(self, run: WorkflowRun) -> dict[str, Any] | None:
        """progress() while `run` (this handle's row, as just read) is running, else None; never raises.

        What GET runs/<id>/events and wait(on_update=...) show: progress is best effort, so a
        result backend that cannot be read gives None rather than an error.
        """
        if run.status != "running":
            return None
        try:
            return self.progress()
        except Exception:
            logger.debug("reading the progress of run %s failed", self.run_id, exc_info=True)
            return None

    def _has_task_state(self) -> bool:
        """Whether the run's Celery task reports its states to a result backend."""
        return not self.eager and bool(self.task_id) and not backend_disabled(self.app)

    def _task_state(self) -> str | None:
        """The task's state in the result backend (PENDING, PROGRESS, SUCCESS, FAILURE, ...), best effort."""
        if not self._has_task_state():
            return None
        try:
            return self.app.backend.get_task_meta(self.task_id).get("status")
        except Exception:
            logger.debug("reading the task state of run %s failed", self.run_id, exc_info=True)
            return None

    # -- waiting

    def wait(self, timeout: float | None = None, on_update: OnUpdate | None = None) -> dict[str, Any]:
        """The run's results; its error re-raised as NodeExecutionError; RunTimeout after timeout.

        on_update(run, progress) is called with the fresh WorkflowRun row and live_progress() on
        the first look and whenever the status, attempts, finished nodes (node_stats) or progress
        changed, last with the final row before wait() returns or raises. With it, wait() polls the
        row (every 5 ms, slowing to every 0.5 s) instead of blocking on the result backend; its
        exceptions propagate. Without it, wait() reads nothing it does not need.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.dispatched and connections[self.using].in_atomic_block:
            self.record()  # a submission rolled back with its savepoint says so instead
            raise DataflowError(
                f"run {self.run_id} starts when the transaction that submitted it commits; wait() "
                "after the atomic block (in tests: django_capture_on_commit_callbacks(execute=True))"
            )
        task_state = None
        if on_update is None and self._has_task_state():
            task_state, value = self._wait_for_task(deadline)
            if task_state == "SUCCESS" and isinstance(value, dict) and value.get("state") == "succeeded":
                if isinstance(value.get("results"), dict):
                    return value["results"]  # sent by the attempt that committed them
        delay = 0.005
        seen: tuple[Any, ...] | None = None
        while True:
            if on_update is not None:
                # Read before the row: a FAILURE seen with a row not yet final is then a failure
                # outside the run, never a run failure recorded between the two reads.
                task_state = self._task_state()
            run = self.record()
            if on_update is not None:
                progress = self.live_progress(run)
                state = (run.status, run.attempts, sorted(run.node_stats or {}), progress)
                if state != seen:
                    seen = state
                    on_update(run, progress)
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
        error = cls(message, node_id=run.error_node or None, node_type=node_type, run_id=self.run_id)
        if run.error_type == "PermissionDenied":
            # The worker refused the recorded user: callers can still tell a refusal from a failure.
            error.__cause__ = exceptions.PermissionDenied(message, node_id=run.error_node or None)
        return error

    # -- cancelling

    def cancel(self) -> bool:
        """Cancel the run if no worker has started it; False when it already started or finished."""
        from django_dataflow.runtime import records

        with tenancy.tenant_scope(self.tenant, self.using):
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
            perform_eagerly(self.run_id, self.using, user=self._user, schema=self.tenant)
            return
        try:
            self.send()
        except Exception as exc:
            # The row is committed: say why it will never run instead of leaving it pending.
            from django_dataflow.runtime import records

            with tenancy.tenant_scope(self.tenant, self.using):
                records.mark_failed(self.run_id, self.using, exc)
            raise

    def send(self) -> None:
        """Send the run's task message (again), with the run's own task id, to the handle's queue.

        Sending twice is safe: the worker's claim runs a run once whatever the number of deliveries.
        """
        if self.eager:
            raise DataflowError(f"run {self.run_id} runs in eager mode; it has no task message to send")
        from django_dataflow import tasks  # noqa: F401  (registers the task with every Celery app)

        kwargs: dict[str, Any] = {"run_id": self.run_id, "using": self.using}
        options: dict[str, Any] = {}
        if self.tenant is not None:
            # The worker switches to this schema before it touches the database (and looks for
            # the run's row there); the header is the one tenant-schemas-celery's apps read.
            kwargs["schema"] = self.tenant
            options["headers"] = {"_schema_name": self.tenant}
        self.app.tasks[TASK_NAME].apply_async(
            kwargs=kwargs, task_id=self.task_id, queue=self.queue or conf.celery_queue(), **options
        )
