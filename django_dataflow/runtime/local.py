"""LocalRuntime: run a workflow in this process, inside one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django_dataflow import conf, tenancy
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.runtime import executor
from django_dataflow.runtime.context import ProgressCallback, RunContext
from django_dataflow.workflow.builder import WorkflowBuilder
from django_dataflow.workflow.graph import Workflow
from django_dataflow.workflow.templating import check_inputs


def as_workflow(workflow: Workflow | WorkflowBuilder | Mapping[str, Any]) -> Workflow:
    """Accept a Workflow, a builder (built now) or a workflow dict."""
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, WorkflowBuilder):
        return workflow.build()
    if isinstance(workflow, Mapping):
        return Workflow.from_dict(workflow)
    raise WorkflowValidationError(f"expected a Workflow, not {type(workflow).__name__}")


class LocalRuntime:
    """Executes workflows in-process; writes no rows of its own unless recording is asked for."""

    def __init__(
        self,
        *,
        using: str | None = None,
        record: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.using = using
        self.record = record
        self.progress = progress

    def execute(
        self,
        workflow: Workflow | WorkflowBuilder | Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        user: Any = None,
    ) -> tuple[dict[str, Any], str]:
        """Run the workflow atomically and return (results by node id, run id).

        tenant=None runs in the tenant the connection is in (django-tenants' middleware routed the
        request there), else without tenant; an unknown tenant is refused before anything runs.
        """
        workflow = as_workflow(workflow)
        inputs = {} if inputs is None else inputs
        using = self.using or conf.database()
        tenant = tenancy.resolve_tenant(tenant, using)
        with tenancy.tenant_scope(tenant, using):
            tenancy.refuse_public_run(workflow, using)
            ctx = RunContext(
                run_id=str(uuid.uuid4()), using=using, tenant=tenant, user=user, progress=self.progress
            )
            record = conf.record_local_runs() if self.record is None else self.record
            if not record:
                return executor.execute(workflow, ctx, inputs), ctx.run_id
            from django_dataflow.runtime import records

            # Refused inputs are never recorded.
            check_inputs(set(workflow.input_names), inputs, workflow.row_inputs)
            run = records.create_run(workflow, ctx, inputs, runtime="local")
            return records.execute_recorded(workflow, ctx, inputs, run), ctx.run_id
