"""CeleryRuntime: runs recorded durably, executed exactly once by a Celery worker.

The submitting side (here) writes the WorkflowRun row and sends the task, with a task id chosen up
front, only when the surrounding transaction commits. The worker side is runtime/worker.py, the
handle runtime/handle.py, the retry policy runtime/retries.py and the app lookup runtime/broker.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import transaction

from django_dataflow import conf, tenancy
from django_dataflow.celery import TASK_NAME
from django_dataflow.exceptions import PermissionDenied, WorkflowValidationError
from django_dataflow.runtime.broker import RUNTIME, RUNTIME_EAGER, is_eager, resolve_app
from django_dataflow.runtime.context import RunContext
from django_dataflow.runtime.handle import RunHandle
from django_dataflow.runtime.local import as_workflow
from django_dataflow.runtime.permissions import check_permissions
from django_dataflow.runtime.retries import is_transient
from django_dataflow.runtime.worker import ProgressThrottle, perform
from django_dataflow.workflow.builder import WorkflowBuilder
from django_dataflow.workflow.graph import Workflow
from django_dataflow.workflow.templating import check_inputs

if TYPE_CHECKING:
    from django_dataflow.models import WorkflowDefinition
    from django_dataflow.triggers.origin import Origin

__all__ = [
    "TASK_NAME", "CeleryRuntime", "ProgressThrottle", "RunHandle", "is_eager", "is_transient", "perform",
]

_CONVERTIBLE = (dt.date, dt.time, dt.timedelta, decimal.Decimal, uuid.UUID)


def _json_inputs(value: Any, path: str = "inputs") -> Any:
    """Inputs as JSON; refuses what the worker could not get back (generators, model instances)."""
    from django_dataflow.nodes.values import jsonable

    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_inputs(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_inputs(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, _CONVERTIBLE):
        return jsonable(value)  # ISO text and strings, which fields convert back
    raise WorkflowValidationError(
        f"{path} is a {type(value).__name__}, which cannot be sent to a Celery worker as JSON"
    )


class CeleryRuntime:
    """Sends workflows to Celery workers (eagerly in process when no broker is configured)."""

    def __init__(self, queue: str | None = None, *, using: str | None = None, app: Any = None) -> None:
        self.queue = queue
        self.using = using
        self._app = app

    def submit(
        self,
        workflow: Workflow | WorkflowBuilder | Mapping[str, Any] | WorkflowDefinition,
        inputs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        user: Any = None,
        *,
        origin: Origin | None = None,
    ) -> RunHandle:
        """Record the run and send it when the current transaction commits; returns its handle.

        origin: what started the run (a schedule, a model change, a finished run; triggers/origin.py).
        """
        from django_dataflow.models import WorkflowDefinition
        from django_dataflow.runtime import records

        definition = workflow if isinstance(workflow, WorkflowDefinition) else None
        built = workflow.build() if isinstance(workflow, WorkflowDefinition) else as_workflow(workflow)
        data = built.to_dict()  # strict: exactly what the worker rebuilds, refused up front if lossy
        inputs = {} if inputs is None else dict(inputs)
        check_inputs(set(built.input_names), inputs, built.row_inputs)
        payload = _json_inputs(inputs)
        if user is not None and getattr(user, "pk", None) is None:
            raise PermissionDenied("CeleryRuntime needs a saved user (the worker reloads it by primary key)")
        check_permissions(built, user)
        using = self.using or conf.database()
        tenant = tenancy.resolve_tenant(tenant, using)
        # An unknown tenant fails here, before any row exists; the run's row is written in the
        # tenant's schema, where the worker (told the schema by the message) finds it.
        scope = tenancy.tenant_scope(tenant, using)
        eager = is_eager(self._app)
        app = None if eager else resolve_app(self._app)
        ctx = RunContext(run_id=str(uuid.uuid4()), using=using, tenant=tenant, user=user)
        if origin is not None:
            ctx.trigger, ctx.chain_depth = origin.trigger, origin.chain_depth
        task_id = "" if eager else str(uuid.uuid4())
        with scope:
            tenancy.refuse_public_run(built, using)
            records.create_run(
                built, ctx, payload, runtime=RUNTIME_EAGER if eager else RUNTIME, task_id=task_id,
                workflow_dict=data, definition=definition.name if definition else "",
                definition_version=definition.version if definition else None,
                parent_run_id=origin.parent_run_id if origin is not None else None,
            )
        handle = RunHandle(
            ctx.run_id, task_id, using=using, app=app, eager=eager, dispatched=False, user=user,
            queue=self.queue or conf.celery_queue(), tenant=tenant,
        )
        # Celery's apply_async_on_commit, on the run's own database: a worker never looks for a
        # row that is not committed, and a rolled-back submission sends nothing.
        transaction.on_commit(handle._dispatch, using=using)
        return handle

    def execute(
        self,
        workflow: Workflow | WorkflowBuilder | Mapping[str, Any] | WorkflowDefinition,
        inputs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        user: Any = None,
        *,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], str]:
        """submit() + wait(): (results by node id, run id), like LocalRuntime.execute."""
        handle = self.submit(workflow, inputs, tenant, user)
        return handle.wait(timeout), handle.run_id

    def handle(self, run_id: str, tenant: str | None = None) -> RunHandle:
        """A handle on an earlier run, by id (and tenant: its row is in the tenant's schema)."""
        return RunHandle.for_run(run_id, using=self.using, app=self._app, tenant=tenant)

    def submit_partitioned(
        self, workflow: Workflow | WorkflowBuilder | Mapping[str, Any], partitions: int = 2,
        inputs: Mapping[str, Any] | None = None, tenant: str | None = None, user: Any = None,
    ) -> Any:
        """Load a one-node BulkCreate workflow's data in `partitions` parallel slices, published
        atomically (PostgreSQL; see runtime/partitioned.py); returns a handle with wait()."""
        from django_dataflow.runtime import partitioned

        check_permissions(as_workflow(workflow), user)
        tenant = tenancy.resolve_tenant(tenant, self.using or conf.database())
        return partitioned.submit(self, workflow, partitions, inputs, tenant)
