"""WorkflowRun rows: created before a run, finished in the run's own transaction on success
and after the rollback on failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from django_dataflow.exceptions import DataflowError, NodeExecutionError
from django_dataflow.models import RunStatus, WorkflowRun
from django_dataflow.nodes.values import jsonable
from django_dataflow.runtime import executor
from django_dataflow.runtime.context import RunContext
from django_dataflow.workflow.graph import Workflow


def create_run(
    workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any], *, runtime: str,
    status: str = RunStatus.PENDING, task_id: str = "",
) -> WorkflowRun:
    """Insert the run row (committed before the work starts)."""
    user_id = "" if ctx.user is None else str(getattr(ctx.user, "pk", "") or "")
    return WorkflowRun.objects.using(ctx.using).create(
        run_id=ctx.run_id,
        workflow=workflow.to_dict(lossy=True),
        inputs=jsonable(dict(inputs)),
        tenant=ctx.tenant or "",
        user_id=user_id,
        runtime=runtime,
        status=status,
        celery_task_id=task_id,
    )


def execute_recorded(
    workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any], run: WorkflowRun
) -> dict[str, Any]:
    """Run through the shared executor; success is written inside the data's transaction."""
    manager = WorkflowRun.objects.using(ctx.using)
    started = timezone.now()
    manager.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=started, attempts=run.attempts + 1
    )

    def succeed(results: dict[str, Any]) -> None:
        manager.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED, results=results, node_stats=ctx.stats,
            finished_at=timezone.now(), error="", error_node="",
        )

    try:
        return executor.execute(workflow, ctx, inputs, before_commit=succeed)
    except DataflowError as exc:
        node = exc.node_id if isinstance(exc, NodeExecutionError) else getattr(exc, "node_id", None)
        manager.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=str(exc), error_node=node or "",
            node_stats=ctx.stats, finished_at=timezone.now(),
        )
        raise
