"""What a node sees of the run it belongs to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

ProgressCallback = Callable[[str, int, int | None], None]


@dataclass
class RunContext:
    """The run's id, database, tenant, user and progress sink, shared by every node."""

    run_id: str
    using: str = "default"
    tenant: str | None = None
    user: Any = None
    progress: ProgressCallback | None = None
    node_id: str = ""
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The WorkflowDefinition the run came from ("" for an ad-hoc workflow).
    definition: str = ""
    #: Runs between this one and a run nothing triggered (follow-ups, triggers fired inside runs).
    chain_depth: int = 0
    #: What started the run (WorkflowRun.trigger), e.g. the model rows of a model-change trigger.
    trigger: dict[str, Any] | None = None

    def report(self, done: int, total: int | None = None) -> None:
        """Report progress of the current node (bulk nodes call this once per chunk)."""
        if self.progress is not None:
            self.progress(self.node_id, done, total)


#: The run whose nodes are executing in this thread (model-change triggers read it: loop guard).
_ACTIVE: ContextVar[RunContext | None] = ContextVar("django_dataflow_active_run", default=None)


def active_run() -> RunContext | None:
    """The RunContext of the run executing here, or None outside a run."""
    return _ACTIVE.get()


@contextmanager
def running(ctx: RunContext) -> Iterator[RunContext]:
    """Mark ctx as the run executing in this thread for the duration of the block."""
    token = _ACTIVE.set(ctx)
    try:
        yield ctx
    finally:
        _ACTIVE.reset(token)
