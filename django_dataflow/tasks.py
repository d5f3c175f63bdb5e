"""The Celery task behind CeleryRuntime (found by the worker's autodiscover_tasks())."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import task_prerun

from django_dataflow.celery import TASK_NAME
from django_dataflow.exceptions import DataflowError
from django_dataflow.runtime.retries import message_counter
from django_dataflow.runtime.worker import ProgressThrottle, perform
from django_dataflow.triggers import schedules
from django_dataflow.triggers.schedules import FIRE_TASK


# acks_late + reject_on_worker_lost: a message is acknowledged only after the run finished, so a
# worker that dies mid-run (kill -9, OOM) leaves it to be delivered again; perform() makes the
# redelivery safe. max_retries=None because perform() keeps its own budgets (transient errors,
# waits for a live attempt); ignore_result=False because wait() listens for the final state;
# throws: a failed run is an expected outcome, logged without a traceback.
@shared_task(
    name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None,
    ignore_result=False, throws=(DataflowError,),
)
def run_workflow(
    self: Any, run_id: str, using: str = "default", retries: int = 0, waits: int = 0,
    schema: str | None = None,
) -> dict[str, Any]:
    """Execute one submitted run, at most once successfully however often it is delivered.

    schema: the tenant's schema the run's row is in (absent for runs without tenant); the worker
    checks that the tenant exists and that the row names it before running anything.
    """
    retries, waits = message_counter("retries", retries), message_counter("waits", waits)
    if schema is not None and not isinstance(schema, str):
        raise DataflowError("task message field 'schema' must be a tenant's schema name")
    progress = ProgressThrottle(lambda meta: self.update_state(state="PROGRESS", meta=meta))
    outcome = perform(run_id, using, retries=retries, waits=waits, progress=progress, schema=schema)
    if outcome.retry_in is not None:
        kwargs = {"run_id": run_id, "using": using, "retries": outcome.retries, "waits": outcome.waits}
        if schema is not None:
            kwargs["schema"] = schema
        raise self.retry(
            kwargs=kwargs,
            countdown=outcome.retry_in,
            exc=outcome.error,
        )
    if outcome.error is not None:
        # The failure is recorded on the run; failing the task too keeps Celery's monitoring honest.
        raise outcome.error
    return outcome.summary()


@shared_task(name=FIRE_TASK, ignore_result=False)
def fire_schedule(schedule_id: int, **mirrored: Any) -> list[dict[str, Any]]:
    """Sent by celery beat (django-celery-beat PeriodicTask): start the schedule's run(s).

    The schedule row is read afresh; the other kwargs only mirror it for the beat admin.
    """
    return schedules.fire(schedule_id)


@task_prerun.connect(weak=False, dispatch_uid="dataflow_stored_triggers_task")
def _refresh_stored_triggers(**kwargs: Any) -> None:
    # Before every task a worker runs (ours and the project's): rows edited elsewhere since the
    # last read are loaded once DATAFLOW['TRIGGER_REFRESH_SECONDS'] have passed.
    from django_dataflow.triggers.stored import maybe_refresh

    maybe_refresh()


# The tasks of CeleryRuntime.submit_partitioned(), registered wherever this module is.
from django_dataflow.runtime import partition_tasks  # noqa: E402, F401
