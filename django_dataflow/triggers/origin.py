"""Who started a run (WorkflowRun.trigger, parent_run_id, chain_depth) and the one way to start one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from django_dataflow import conf
from django_dataflow.exceptions import DataflowError
from django_dataflow.runtime.context import RunContext

if TYPE_CHECKING:
    from django_dataflow.runtime.handle import RunHandle


class TriggerRefused(DataflowError):
    """A schedule, trigger or follow-up did not start a run (disabled definition, chain too deep)."""


class Origin(NamedTuple):
    """What starts a run: the trigger description, and the run that caused it (if any)."""

    trigger: dict[str, Any]
    parent_run_id: str | None = None
    chain_depth: int = 0

    @classmethod
    def after(cls, trigger: dict[str, Any], parent: RunContext | None) -> Origin:
        """The origin of a run caused by `parent` (None: caused from outside any run)."""
        if parent is None:
            return cls(trigger)
        return cls(trigger, parent.run_id, parent.chain_depth + 1)


def start(
    name: str, inputs: Mapping[str, Any] | None, *, origin: Origin, tenant: str | None = None,
    using: str | None = None,
) -> RunHandle:
    """Submit definition `name` through CeleryRuntime; refuses a disabled one or a too deep chain."""
    from django_dataflow.runtime.celery import CeleryRuntime
    from django_dataflow.runtime.definitions import get_definition

    definition = get_definition(name, using=using)
    if not definition.enabled:
        raise TriggerRefused(f"workflow definition {name!r} is disabled")
    limit = conf.max_chain_depth()
    if origin.chain_depth > limit:
        raise TriggerRefused(
            f"workflow definition {name!r} not started: it would be run {origin.chain_depth} of a chain "
            f"(started by run {origin.parent_run_id}), above DATAFLOW['MAX_CHAIN_DEPTH'] ({limit})"
        )
    return CeleryRuntime(using=using).submit(definition, inputs, tenant=tenant, origin=origin)
