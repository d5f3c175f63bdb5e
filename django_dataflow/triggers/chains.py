"""Chained runs: a definition's on_success / on_failure follow-ups, started when one of its runs ends.

A success's follow-ups are recorded inside the run's own transaction (they exist exactly when the
run's data does, and are sent when it commits); a failure's after the failure is recorded. Every
follow-up is one deeper in the chain than the run that started it (bounded by MAX_CHAIN_DEPTH), and
what each follow-up became (its run id, or why it was refused) is written to WorkflowRun.follow_ups.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from django_dataflow.exceptions import DataflowError, NodeExecutionError
from django_dataflow.runtime.context import RunContext
from django_dataflow.triggers.origin import Origin, start

logger = logging.getLogger("django_dataflow.triggers")

#: The inputs every follow-up receives (docs/triggers.md).
FOLLOW_UP_INPUTS = ("run_id", "definition", "status", "results", "error", "error_node")


def follow_up_problems(definition: Any, field: str) -> list[str]:
    """Why definition.<field> (on_success / on_failure) is not a list of definition names."""
    from django_dataflow.runtime.definitions import _SLUG

    value = getattr(definition, field)
    if not isinstance(value, list) or not all(isinstance(n, str) and _SLUG.fullmatch(n) for n in value):
        return [f"{field} must be a list of workflow definition names, not {value!r}"]
    return []


def after_success(ctx: RunContext, results: dict[str, Any]) -> None:
    """Start the on_success follow-ups of the run's definition (inside the run's transaction)."""
    if ctx.definition:
        inputs = {"results": results, "error": "", "error_node": ""}
        _start_follow_ups(ctx, "on_success", "succeeded", inputs)


def after_failure(ctx: RunContext, exc: BaseException) -> None:
    """Start the on_failure follow-ups of the run's definition (after the failure was recorded)."""
    if not ctx.definition:
        return
    node = exc.node_id if isinstance(exc, NodeExecutionError) else ""
    message = str(exc) if isinstance(exc, DataflowError) else f"{type(exc).__name__}: {exc}"
    inputs = {"results": None, "error": message, "error_node": node or ""}
    with transaction.atomic(using=ctx.using):
        _start_follow_ups(ctx, "on_failure", "failed", inputs)


def _start_follow_ups(ctx: RunContext, field: str, status: str, extra: dict[str, Any]) -> None:
    from django_dataflow.models import WorkflowDefinition, WorkflowRun

    names = (
        WorkflowDefinition.objects.using(ctx.using)
        .filter(name=ctx.definition).values_list(field, flat=True).first()
    )
    if not names:
        return
    inputs = {"run_id": ctx.run_id, "definition": ctx.definition, "status": status, **extra}
    origin = Origin.after({"kind": "chain", "on": status, "definition": ctx.definition}, ctx)
    entries: list[dict[str, Any]] = []
    for name in names:
        try:
            handle = start(name, inputs, origin=origin, tenant=ctx.tenant, using=ctx.using)
        except DataflowError as exc:
            # A follow-up that cannot start must not undo (or fail) the run that finished.
            logger.error("run %s of %r: follow-up %r not started: %s", ctx.run_id, ctx.definition, name, exc)
            entries.append({"definition": name, "refused": str(exc)})
        else:
            entries.append({"definition": name, "run_id": handle.run_id})
    WorkflowRun.objects.using(ctx.using).filter(pk=ctx.run_id).update(follow_ups=entries)
