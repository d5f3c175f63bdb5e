"""The one executor behind every runtime: runs a workflow's nodes in order in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction

from django_dataflow import access, tenancy
from django_dataflow.exceptions import DataflowError, NodeExecutionError, PermissionDenied
from django_dataflow.runtime import instrument, statement_timeout
from django_dataflow.runtime.context import RunContext, running
from django_dataflow.runtime.permissions import check_permissions, for_node
from django_dataflow.transfer.references import open_references
from django_dataflow.workflow.graph import Connection, Workflow
from django_dataflow.workflow.templating import check_inputs, render

Results = dict[str, Any]
#: Called with the results inside the transaction, just before it commits.
BeforeCommit = Callable[[Results], None]
_ROW_KEYS = ("created", "updated", "deleted")


def execute(
    workflow: Workflow,
    ctx: RunContext,
    inputs: Mapping[str, Any] | None = None,
    *,
    before_commit: BeforeCommit | None = None,
) -> Results:
    """Run every node; any failure rolls back all writes and raises NodeExecutionError.

    Workflows with no writing node run without a transaction: there is nothing to make atomic,
    and PostgreSQL's default READ COMMITTED would not give a shared snapshot anyway.
    """
    with instrument.workflow_run(ctx):
        return _execute(workflow, ctx, {} if inputs is None else inputs, before_commit)


def _execute(
    workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any], before_commit: BeforeCommit | None
) -> Results:
    check_inputs(set(workflow.input_names), inputs, workflow.row_inputs)
    # dataflow_import --async: a signed file reference becomes the file's rows, read here.
    inputs = open_references(inputs)
    with access.active(ctx.user), running(ctx):
        check_permissions(workflow, ctx.user)
        with tenancy.tenant_scope(ctx.tenant, ctx.using):
            tenancy.refuse_public_run(workflow, ctx.using)
            # Inside a caller's transaction a failed read must not leave it aborted (PostgreSQL):
            # there, even a read-only workflow takes a savepoint. A statement timeout needs a
            # transaction too (SET LOCAL), so it gives read-only workflows one.
            timeout = statement_timeout.for_run(ctx.using)
            outside = not transaction.get_connection(ctx.using).in_atomic_block
            if not workflow.writes and before_commit is None and outside and timeout is None:
                return _run_nodes(workflow, ctx, inputs)
            with transaction.atomic(using=ctx.using), statement_timeout.applied(ctx.using, timeout):
                results = _run_nodes(workflow, ctx, inputs)
                if before_commit is not None:
                    before_commit(results)
                return results


def _run_nodes(workflow: Workflow, ctx: RunContext, inputs: Mapping[str, Any]) -> Results:
    results: Results = {}
    for node_id in workflow.order:
        spec = workflow.node(node_id)
        cls = workflow.node_class(node_id)
        ctx.node_id = node_id
        started = time.perf_counter()
        try:
            params = render(spec.params, inputs) if node_id in workflow.templated else dict(spec.params)
            for connection in workflow.incoming[node_id]:
                _assign(params, connection, _follow(results[connection.source], connection))
            dynamic = node_id in workflow.templated or bool(workflow.incoming[node_id])
            result = instrument.run_node(cls, params, ctx, dynamic=dynamic)
        except NodeExecutionError as exc:
            exc.node_id, exc.node_type, exc.run_id = node_id, spec.type, ctx.run_id
            raise
        except PermissionDenied as exc:
            # A name that reached the node through a placeholder or a connection (the static ones
            # were checked before the run): still a refusal, not a failure of the node.
            raise for_node(exc, node_id=node_id, node_type=spec.type) from None
        except Exception as exc:
            timed_out = statement_timeout.describe(exc, ctx.using)
            if timed_out:
                raise NodeExecutionError(
                    timed_out, node_id=node_id, node_type=spec.type, run_id=ctx.run_id
                ) from exc
            message = str(exc) if isinstance(exc, DataflowError) else f"{type(exc).__name__}: {exc}"
            raise NodeExecutionError(
                message, node_id=node_id, node_type=spec.type, run_id=ctx.run_id
            ) from exc
        results[node_id] = result
        ctx.stats[node_id] = {
            "seconds": round(time.perf_counter() - started, 6),
            "rows": _rows(result),
        }
    return results


def _rows(result: Any) -> int:
    """Rows a node touched or returned, for run statistics."""
    if result is None:
        return 0
    if not isinstance(result, dict):
        return 1
    if isinstance(result.get("count"), int):
        return result["count"]
    counted = [result[k] for k in _ROW_KEYS if isinstance(result.get(k), int)]
    return sum(counted) if counted else 1


def _follow(result: Any, connection: Connection) -> Any:
    """The value at a dotted path in a result ('records.0.id')."""
    value = result
    for part in connection.source_path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise NodeExecutionError(
                f"connection {connection}: the result of '{connection.source}' has no '{part}' "
                f"(got {type(value).__name__})"
            )
    return value


def _assign(params: dict[str, Any], connection: Connection, value: Any) -> None:
    """Set a (possibly dotted) target param, copying nested dicts so the workflow stays untouched."""
    *parents, last = connection.target_param.split(".")
    target = params
    for part in parents:
        nested = target.get(part)
        nested = dict(nested) if isinstance(nested, Mapping) else {}
        target[part] = nested
        target = nested
    target[last] = value
