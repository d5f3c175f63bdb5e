"""WorkflowRun rows: created before a run, finished in the run's own transaction on success
and after the rollback on failure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db import connections, models
from django.db.models import F
from django.utils import timezone

from django_dataflow import tenancy
from django_dataflow.exceptions import DataflowError, NodeExecutionError
from django_dataflow.models import RunStatus, WorkflowRun
from django_dataflow.nodes.values import column_name, concrete_field, jsonable
from django_dataflow.runtime import executor
from django_dataflow.runtime.context import RunContext
from django_dataflow.workflow.graph import Workflow

#: Statuses a worker may (re)start: never started, or started by an attempt that died.
RESTARTABLE = (RunStatus.PENDING, RunStatus.RUNNING)
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def create_run(
    workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any], *, runtime: str,
    status: str = RunStatus.PENDING, task_id: str = "", workflow_dict: dict[str, Any] | None = None,
    definition: str = "", definition_version: int | None = None, parent_run_id: str | None = None,
) -> WorkflowRun:
    """Insert the run row (committed before the work starts); ctx carries chain depth and trigger."""
    user_id = "" if ctx.user is None else str(getattr(ctx.user, "pk", "") or "")
    return WorkflowRun.objects.using(ctx.using).create(
        run_id=ctx.run_id,
        workflow=workflow.to_dict(lossy=True) if workflow_dict is None else workflow_dict,
        inputs=jsonable(dict(inputs)),
        tenant=ctx.tenant or "",
        user_id=user_id,
        runtime=runtime,
        status=status,
        celery_task_id=task_id,
        definition=definition,
        definition_version=definition_version,
        trigger=None if ctx.trigger is None else jsonable(ctx.trigger),
        parent_run_id=parent_run_id,
        chain_depth=ctx.chain_depth,
    )


def claim_run(run_id: str, using: str) -> WorkflowRun | None:
    """Mark a pending or interrupted run as running with one more attempt; None if it is finished.

    One conditional UPDATE, committed at once: a concurrent cancel() and this claim cannot both win,
    and the attempt stays counted even if the worker dies before the data commits.
    """
    manager = WorkflowRun.objects.using(using)
    claimed = manager.filter(pk=run_id, status__in=RESTARTABLE).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    return manager.get(pk=run_id) if claimed else None


# PostgreSQL: take the run's session advisory lock and claim the run in one round trip. The CTEs
# call volatile functions, so they are never inlined and run exactly once, before the UPDATE.
# The claim commits asynchronously (no WAL flush wait): WAL is flushed in order, so the data
# commit that follows, which does wait, makes the claim durable too. Only a database crash
# between the two can lose it, and then that attempt's data is lost with it.
_LOCK_AND_CLAIM = """
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS value),
lock AS (SELECT pg_try_advisory_lock(%s::bigint) AS held FROM async_commit),
claimed AS (
    UPDATE {table} SET status = %s, started_at = %s, attempts = {table}.attempts + 1
    FROM lock
    WHERE {table}.run_id = %s AND {table}.status IN (%s, %s) AND lock.held
    RETURNING {table}.run_id, {table}.workflow, {table}.inputs, {table}.tenant, {table}.user_id,
              {table}.attempts, {table}.definition, {table}.chain_depth, {table}.trigger
)
SELECT lock.held, claimed.* FROM lock LEFT JOIN claimed ON TRUE
"""


def lock_and_claim_run(run_id: str, using: str, key: int) -> tuple[bool, WorkflowRun | None]:
    """PostgreSQL: (lock held, claimed run or None). Holding the lock without a claim means the run
    is finished; the caller releases the lock then."""
    connection = connections[using]
    table = connection.ops.quote_name(WorkflowRun._meta.db_table)
    row = _prepared(
        connection, _LOCK_AND_CLAIM.format(table=table),
        [key, RunStatus.RUNNING, timezone.now(), run_id, *RESTARTABLE],
    )
    assert row is not None  # the lock CTE gives one row whether or not a run was claimed
    held, claimed = bool(row[0]), row[1] is not None
    if not claimed:
        return held, None
    fields = [_json_field(n) for n in ("workflow", "inputs", "trigger")]
    # No expression: JSONField.from_db_value only looks at it for KeyTransform (django-stubs wants one).
    workflow, inputs, trigger = (
        f.from_db_value(value, None, connection) if isinstance(value, str) else value  # type: ignore[arg-type]
        for f, value in zip(fields, (row[2], row[3], row[9]), strict=True)
    )
    run = WorkflowRun(
        run_id=row[1], workflow=workflow, inputs=inputs, tenant=row[4], user_id=row[5],
        attempts=row[6], status=RunStatus.RUNNING, definition=row[7], chain_depth=row[8], trigger=trigger,
    )
    run._state.adding, run._state.db = False, using
    return True, run


def _json_field(name: str) -> models.JSONField:
    field = WorkflowRun._meta.get_field(name)
    assert isinstance(field, models.JSONField)  # workflow, inputs and trigger are JSONFields
    return field


def execute_recorded(
    workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any], run: WorkflowRun, *,
    claimed: bool = False, record_failure: Callable[[BaseException], bool] | None = None,
    release_lock: int | None = None,
    on_success: Callable[[RunContext, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run through the shared executor; success is written inside the data's transaction.

    claimed: the caller already marked the run running (claim_run). record_failure decides whether
    a failure is written to the row (a worker that will retry leaves the row running).
    release_lock: a PostgreSQL advisory lock key to release in the same statement that marks the
    run succeeded (safe before the COMMIT: a duplicate then waits on the row lock, and finds the
    run finished, or, if the commit failed, still restartable).
    on_success: called in the data's transaction after the success is written (follow-up runs are
    recorded atomically with the run's data; see triggers/chains.py).
    """
    manager = WorkflowRun.objects.using(ctx.using)
    if not claimed:
        manager.filter(pk=run.pk).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), attempts=run.attempts + 1
        )

    def succeed(results: dict[str, Any]) -> None:
        values = {
            "status": RunStatus.SUCCEEDED, "results": results, "node_stats": ctx.stats,
            "finished_at": timezone.now(), "error": "", "error_node": "", "error_type": "",
        }
        if release_lock is None:
            manager.filter(pk=run.pk).update(**values)
        else:
            _update_and_unlock(ctx.using, run.pk, values, release_lock)
        if on_success is not None:
            on_success(ctx, results)

    try:
        return executor.execute(workflow, ctx, inputs, before_commit=succeed)
    except DataflowError as exc:
        if record_failure is None or record_failure(exc):
            mark_failed(run.pk, ctx.using, exc, ctx.stats)
        raise


def _update_and_unlock(using: str, pk: Any, values: dict[str, Any], key: int) -> None:
    connection = connections[using]
    meta = WorkflowRun._meta
    quote = connection.ops.quote_name
    columns, params = [], []
    for name, value in values.items():
        field = concrete_field(WorkflowRun, name)
        columns.append(f"{quote(column_name(field))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(columns)} "
        f"WHERE {quote(column_name(meta.pk))} = %s RETURNING pg_advisory_unlock(%s::bigint)"
    )
    _prepared(connection, sql, [*params, meta.pk.get_db_prep_value(pk, connection), key])


def _prepared(connection: Any, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """PostgreSQL: run one of this module's fixed statements as a prepared statement.

    Django binds parameters on the client, so PostgreSQL plans every statement anew; planning the
    claim took longer than running it (0.8 ms against 0.3 ms). These statements are the same text
    on every run, so each connection plans them once. Errors are Django's, as from its cursors.
    """
    import psycopg

    connection.ensure_connection()
    tenancy.sync_search_path(connection.alias)  # the driver's cursor bypasses django-tenants' SET
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def mark_failed(run_id: Any, using: str, exc: BaseException, stats: Mapping[str, Any] | None = None) -> None:
    """Record a failure (after the rollback): the error, its class and the failing node."""
    node = exc.node_id if isinstance(exc, NodeExecutionError) else getattr(exc, "node_id", None)
    message = str(exc) if isinstance(exc, DataflowError) else f"{type(exc).__name__}: {exc}"
    WorkflowRun.objects.using(using).filter(pk=run_id).update(
        status=RunStatus.FAILED, error=message, error_node=node or "", error_type=type(exc).__name__,
        node_stats=dict(stats or {}), finished_at=timezone.now(),
    )


def cancel_run(run_id: str, using: str) -> bool:
    """Cancel a run no worker has started yet; False when it already started or finished."""
    return bool(
        WorkflowRun.objects.using(using)
        .filter(pk=run_id, status=RunStatus.PENDING)
        .update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    )
