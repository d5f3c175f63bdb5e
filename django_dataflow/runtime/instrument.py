"""What the executor does around every node and run: metrics, the result cache, audit entries and
slow-node logs. One place for every runtime (LocalRuntime and Celery workers share the executor)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django_dataflow import audit, cache, conf, metrics, redaction, tenancy

if TYPE_CHECKING:
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.runtime.context import RunContext

logger = logging.getLogger("django_dataflow.slow")
_WRITE_KEYS = ("created", "updated", "deleted")


def run_node(node: type[ModelNode], params: dict[str, Any], ctx: RunContext, *, dynamic: bool) -> Any:
    """node.run(params, ctx), through the cache (reads) or with audit entries (writes), measured.

    dynamic: params came from inputs or connections (a user's cached read needs static params).
    """
    started = time.perf_counter()
    outcome = "error"
    try:
        if node.operation in cache.CACHEABLE:
            result = cache.read_through(
                node, params, ctx, dynamic=dynamic, run=lambda p: node.run(p, ctx)
            )
        elif node.writes and audit.mode(node.entry):
            result = audit.audited(node, params, ctx, lambda p: node.run(p, ctx))
        else:
            result = node.run(params, ctx)
        outcome = "ok"
        return result
    finally:
        seconds = time.perf_counter() - started
        tenant = tenancy.current_schema(ctx.using) or ""
        metrics.node_finished(node.type_name, node.operation, outcome, seconds, tenant)
        if outcome == "ok" and node.writes:
            metrics.rows_written(node.operation, node.entry.label, _written(node, result), tenant)
        slow = conf.slow_node_seconds()
        if slow is not None and seconds > slow:
            metrics.slow_node(node.type_name, tenant)
            logger.warning(
                "slow node %r (%s) took %.3fs in run %s (%s): params %s",
                ctx.node_id, node.type_name, seconds, ctx.run_id, outcome,
                redaction.loggable_params(node.entry, params),
            )


def _written(node: type[ModelNode], result: Any) -> int:
    """Rows a write node reports: 1 for Create/Update/Delete, the counts of a bulk op."""
    if not node.operation.startswith("Bulk") or not isinstance(result, dict):
        return 1
    return sum(v for k in _WRITE_KEYS if isinstance(v := result.get(k), int) and not isinstance(v, bool))


@contextmanager
def workflow_run(ctx: RunContext) -> Iterator[None]:
    """Count the run by its final status once the body (the whole transaction) is over."""
    status = "failed"
    try:
        yield
        status = "succeeded"
    finally:
        metrics.run_finished(status, ctx.tenant or "")
