"""Partitioned bulk loads: N slices of a BulkCreate node's data COPied in parallel by N Celery
workers into UNLOGGED staging tables, then moved into the target by one final step in one
transaction (parallel load, atomic publish). Any failing slice fails the job and drops every
staging table; so does a failing publish.

The tasks are in runtime/partition_tasks.py; CeleryRuntime.submit_partitioned() is the entry point.
Without a broker (eager mode) the slices run one after the other in this process, same code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connections, models, transaction

from django_dataflow import conf
from django_dataflow.exceptions import DataflowError, RunTimeout, WorkflowValidationError
from django_dataflow.nodes.encoding import RowEncoder, encoded_rows
from django_dataflow.nodes.pg_bulk import copy_unavailable, insert_columns, stream_copy
from django_dataflow.nodes.pg_copy import ROW_COLUMN, quote
from django_dataflow.nodes.rows import check_deferred_constraints
from django_dataflow.nodes.values import column_name, concrete_field
from django_dataflow.registry import get_node_class
from django_dataflow.tenancy import tenant_scope, validate_tenant

if TYPE_CHECKING:
    from django_dataflow.nodes.base import ModelNode

#: Registered names of the tasks (runtime/partition_tasks.py).
LOAD_TASK = "django_dataflow.load_partition"
PUBLISH_TASK = "django_dataflow.publish_partitions"
DROP_TASK = "django_dataflow.drop_partitions"


class Job(dict):
    """What every task of one partitioned load needs, as JSON: job id, node type, params, columns."""

    @property
    def tables(self) -> list[str]:
        """The staging table of every partition."""
        return [staging_name(self["job_id"], index) for index in range(self["partitions"])]


def staging_name(job_id: str, index: int) -> str:
    """The UNLOGGED staging table of one partition."""
    return f"dataflow_part_{job_id}_{index}"


def plan(workflow: Any, partitions: int, inputs: Mapping[str, Any] | None, using: str) -> tuple[Job, list]:
    """Check the one-node BulkCreate workflow and split its data into `partitions` slices."""
    from django_dataflow.runtime.local import as_workflow
    from django_dataflow.workflow.templating import render

    built = as_workflow(workflow)
    if len(built.order) != 1:
        raise WorkflowValidationError("submit_partitioned() takes a workflow of exactly one BulkCreate node")
    node_id = built.order[0]
    spec = built.node(node_id)
    node = get_node_class(spec.type)
    if node is None or node.operation != "BulkCreate":
        raise WorkflowValidationError(f"submit_partitioned() loads BulkCreate nodes, not {spec.type}")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise WorkflowValidationError(f"'partitions' must be a positive integer, not {partitions!r}")
    reason = copy_unavailable(node, using, validate=spec.params.get("validate") is True)
    if reason is not None:
        raise WorkflowValidationError(f"a partitioned load needs the COPY path: {reason}")
    params = render(spec.params, dict(inputs or {})) if node_id in built.templated else dict(spec.params)
    data = params.pop("data", None)
    if not isinstance(data, list):
        raise WorkflowValidationError(
            "a partitioned load needs 'data' as a list (each slice travels as JSON)"
        )
    size = -(-len(data) // partitions) or 1
    slices = [data[start:start + size] for start in range(0, size * partitions, size)]
    fields = insert_columns(node.model, data[0] if data else None)
    job = Job(
        job_id=uuid.uuid4().hex[:16], node_id=node_id, node_type=spec.type, params=params,
        partitions=partitions, columns=[f.attname for f in fields], using=using,
        offsets=[index * size for index in range(partitions)],
    )
    return job, slices


def _node_and_fields(job: Mapping[str, Any]) -> tuple[type[ModelNode], list[models.Field]]:
    node = get_node_class(job["node_type"])
    if node is None:
        # A worker whose DATAFLOW settings register other models than the submitting process's.
        raise DataflowError(
            f"partitioned load: node type '{job['node_type']}' is not registered in this process"
        )
    return node, [concrete_field(node.model, name) for name in job["columns"]]


def load_partition(job: Mapping[str, Any], index: int, rows: list[Any], tenant: str | None) -> dict[str, Any]:
    """COPY one slice into its UNLOGGED staging table (committed: the publish step reads it)."""
    from django_dataflow.nodes.bulk import batch_size

    node, fields = _node_and_fields(job)
    using = job["using"]
    connection = connections[using]
    table = staging_name(job["job_id"], index)
    columns = ", ".join(quote(connection, column_name(f)) for f in fields)
    size = batch_size(job["params"])
    with tenant_scope(tenant), transaction.atomic(using=using):
        with connection.cursor() as cursor:
            # A redelivered slice (its worker died after the commit) starts again from nothing.
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            # UNLOGGED: no WAL for the staged copy; only the publish writes WAL, once.
            cursor.execute(
                f"CREATE UNLOGGED TABLE {table} AS SELECT {columns}, 0::bigint AS {ROW_COLUMN} "
                f"FROM {quote(connection, node.model._meta.db_table)} WITH NO DATA"
            )
        encoder = RowEncoder(node, connection, fields)
        offset = job["offsets"][index]
        done: list[int] = [0]
        stream = encoded_rows(
            encoder, rows, size, with_index=True, first_index=offset,
            on_chunk=lambda n: done.__setitem__(0, n),
        )
        try:
            columns_and_row = [*(column_name(f) for f in fields), ROW_COLUMN]
            stream_copy(connection, table, columns_and_row, stream, fields, size)
        except DataflowError as exc:
            raise DataflowError(f"partition {index}: {exc}") from exc
    return {"partition": index, "rows": done[0]}


def publish(
    job: Mapping[str, Any], loaded: Sequence[Mapping[str, Any]], tenant: str | None
) -> dict[str, Any]:
    """Move every staged row into the target in one transaction, then drop the staging tables."""
    node, fields = _node_and_fields(job)
    using = job["using"]
    connection = connections[using]
    columns = ", ".join(quote(connection, column_name(f)) for f in fields)
    union = " UNION ALL ".join(f"SELECT {columns}, {ROW_COLUMN} FROM {t}" for t in Job(job).tables)
    try:
        with tenant_scope(tenant), transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {quote(connection, node.model._meta.db_table)} ({columns}) "
                    f"SELECT {columns} FROM ({union}) AS staged ORDER BY {ROW_COLUMN}"
                )
                created = cursor.rowcount
            staged = sum(int(p["rows"]) for p in loaded)
            if created != staged:
                # A crash of PostgreSQL empties UNLOGGED tables: never publish a partial load.
                raise DataflowError(
                    f"partitioned load {job['job_id']}: {staged} rows were staged but {created} "
                    "remain (the server restarted?); nothing was published"
                )
            check_deferred_constraints(node, using)
            drop(job, tenant)  # in the same transaction: published and cleaned up together
    except Exception:
        drop(job, tenant)
        raise
    return {job["node_id"]: {"created": int(created)}, "partitions": [dict(p) for p in loaded]}


def drop(job: Mapping[str, Any], tenant: str | None) -> None:
    """Drop every staging table of the job that exists."""
    connection = connections[job["using"]]
    with tenant_scope(tenant), connection.cursor() as cursor:
        for table in Job(job).tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


class PartitionedHandle:
    """A submitted partitioned load: wait() returns {node_id: {"created": n}, "partitions": [...]}."""

    def __init__(self, job: Job, result: Any = None, outcome: Any = None) -> None:
        self.job = job
        self.job_id = job["job_id"]
        self._result = result
        self._outcome = outcome

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """The publish step's result; a failed slice or publish raises DataflowError naming it."""
        if self._result is None:
            if isinstance(self._outcome, BaseException):
                raise self._outcome
            return self._outcome
        from celery.exceptions import TimeoutError as CeleryTimeout

        started = time.monotonic()
        try:
            return self._result.get(timeout=timeout, interval=0.05, disable_sync_subtasks=False)
        except CeleryTimeout:
            raise RunTimeout(
                f"partitioned load {self.job_id} not finished after {time.monotonic() - started:.0f}s"
            ) from None
        except DataflowError:
            raise
        except Exception as exc:  # ChordError and the like: a slice failed
            raise DataflowError(f"partitioned load {self.job_id} failed: {exc}") from exc


def submit(
    runtime: Any, workflow: Any, partitions: int, inputs: Mapping[str, Any] | None, tenant: str | None
) -> PartitionedHandle:
    """Plan the job and send its chord: N loads, then the publish; a failure drops the tables."""
    from django_dataflow.runtime.broker import is_eager, resolve_app

    using = runtime.using or conf.database()
    validate_tenant(tenant)  # an unknown tenant fails here
    job, slices = plan(workflow, partitions, inputs, using)
    if is_eager(runtime._app):
        try:
            loaded = [load_partition(job, i, rows, tenant) for i, rows in enumerate(slices)]
            return PartitionedHandle(job, outcome=publish(job, loaded, tenant))
        except Exception as exc:
            drop(job, tenant)
            failure = exc if isinstance(exc, DataflowError) else DataflowError(f"{type(exc).__name__}: {exc}")
            return PartitionedHandle(job, outcome=failure)
    from celery import chord

    from django_dataflow.runtime import partition_tasks  # noqa: F401  (registers the tasks)

    app = resolve_app(runtime._app)
    queue = runtime.queue or conf.celery_queue()
    header = [
        app.signature(LOAD_TASK, args=(dict(job), i, rows, tenant), queue=queue)
        for i, rows in enumerate(slices)
    ]
    body = app.signature(PUBLISH_TASK, args=(dict(job), tenant), queue=queue)
    body.link_error(app.signature(DROP_TASK, args=(dict(job), tenant), queue=queue))
    result = chord(header, app=app)(body)
    return PartitionedHandle(job, result=result)
