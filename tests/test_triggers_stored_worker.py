"""Stored triggers in another process (PostgreSQL pass): a Celery worker started after a row was
saved fires it from its first connection, and picks up rows changed by this process at its next
task once DATAFLOW['TRIGGER_REFRESH_SECONDS'] have passed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from django_dataflow import CeleryRuntime
from django_dataflow.models import ModelTriggerRule, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers import stored
from tests.celery_support import WorkerProcess, client_app, require_celery_and_redis, sending_to
from tests.conftest import build

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = f"dataflow-test-stored-triggers-{uuid.uuid4().hex[:8]}"
#: The worker re-reads the rows at its next task once this many seconds have passed.
INTERVAL = 0.5


@pytest.fixture(autouse=True)
def forget_loaded_rows() -> Iterator[None]:
    """The flush after the test sends no signals: forget the rows loaded in this process."""
    stored.reset()
    yield
    stored.reset()


def audit_runs(count: int, timeout: float = 60) -> list[WorkflowRun]:
    """Wait until `count` runs of 'audit' finished (their tasks returned); oldest first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(WorkflowRun.objects.filter(definition="audit").order_by("created_at"))
        if len([r for r in found if r.status in ("succeeded", "failed")]) >= count:
            for run in found:
                client_app.AsyncResult(run.celery_task_id).get(timeout=timeout, propagate=False)
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {count} run(s) of 'audit'")


def create_customer(email: str) -> str:
    """A run on the worker that creates a customer (the worker's write fires the triggers)."""
    node = ("CustomerCreateNode", "add", {"name": "C", "email": email})
    handle = CeleryRuntime().submit(build([node]))
    handle.wait(60)
    return handle.run_id


def test_a_worker_fires_stored_rows_and_picks_up_changes(tmp_path: Path) -> None:
    require_celery_and_redis()
    count = build([("ProductCountNode", "c", {})]).to_dict()
    audit = WorkflowDefinition.objects.create(name="audit", workflow=count)
    first = ModelTriggerRule.objects.create(model="shop.Customer", event="created", definition=audit,
                                            inputs={"version": 1})
    first_pk = first.pk
    worker = WorkerProcess(
        QUEUE, str(connections["default"].settings_dict["NAME"]), tmp_path, concurrency=1,
        env={"DATAFLOW_TRIGGER_REFRESH_SECONDS": str(INTERVAL)},
    ).start()
    try:
        with sending_to(QUEUE):
            # Saved before the worker started: read at its first connection.
            parent = create_customer("one@example.com")
            [run] = audit_runs(1)
            assert run.runtime == "celery" and run.status == "succeeded", run.error
            assert (run.inputs["version"], run.trigger["rule"]) == (1, first_pk)
            assert str(run.parent_run_id) == parent  # started by the worker's write

            # Changed here: the worker's own registry changes at its next task after the interval.
            first.delete()
            second = ModelTriggerRule.objects.create(
                model="shop.Customer", event="created", definition=audit, inputs={"version": 2}
            )
            time.sleep(INTERVAL * 2)  # longer than the interval since the worker's last read
            create_customer("two@example.com")
            runs = audit_runs(2)
            assert [(r.inputs["version"], r.trigger["rule"]) for r in runs] == [(1, first_pk), (2, second.pk)]
    finally:
        worker.stop()
