"""The Celery tasks of partitioned loads (runtime/partitioned.py): load a slice, publish, drop.

Imported by django_dataflow/tasks.py, so a worker that runs workflows runs these too.
"""

from __future__ import annotations

from typing import Any

from celery import current_task, shared_task

from django_dataflow.exceptions import DataflowError
from django_dataflow.runtime import partitioned


# acks_late + reject_on_worker_lost: a slice whose worker died is delivered again; its staging
# table was created in the slice's own transaction, so a redelivery starts from nothing.
@shared_task(
    name=partitioned.LOAD_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=False,
    throws=(DataflowError,),
)
def load_partition(job: dict[str, Any], index: int, rows: list[Any], tenant: str | None) -> dict[str, Any]:
    """COPY one slice into its UNLOGGED staging table."""
    loaded = partitioned.load_partition(job, index, rows, tenant)
    return {**loaded, "worker": current_task.request.hostname}


@shared_task(name=partitioned.PUBLISH_TASK, ignore_result=False, throws=(DataflowError,))
def publish_partitions(
    loaded: list[dict[str, Any]], job: dict[str, Any], tenant: str | None
) -> dict[str, Any]:
    """The chord's body: every staged row into the target in one transaction."""
    return partitioned.publish(job, loaded, tenant)


@shared_task(name=partitioned.DROP_TASK, ignore_result=True)
def drop_partitions(request: Any, exc: Any, traceback: Any, job: dict[str, Any], tenant: str | None) -> None:
    """The chord's errback (a slice failed): drop every staging table of the job."""
    partitioned.drop(job, tenant)
