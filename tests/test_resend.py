"""dataflow_resend: pending Celery runs whose message was lost are sent again, nothing else is."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_dataflow import CeleryRuntime
from django_dataflow import celery as dataflow_celery
from django_dataflow.exceptions import DataflowError
from django_dataflow.models import WorkflowRun
from django_dataflow.runtime.handle import RunHandle
from django_dataflow.runtime.resend import resend_stale_runs, stale_pending_runs
from tests.conftest import build

pytestmark = pytest.mark.django_db


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Any) -> Any:
    """pytest-django's on_commit capture, under a shorter name."""
    return django_capture_on_commit_callbacks


class StubTask:
    """Records what would have gone to the broker, or fails like a broker that is down."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error: Exception | None = None

    def apply_async(self, **options: Any) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(options)


TASK = StubTask()
#: DATAFLOW["CELERY_APP"] of the command tests.
STUB_APP = SimpleNamespace(
    conf=SimpleNamespace(broker_url="redis://stub", task_always_eager=False),
    tasks={dataflow_celery.TASK_NAME: TASK},
)


@pytest.fixture(autouse=True)
def stub_broker(settings: Any) -> StubTask:
    """CeleryRuntime sends to the stub (never eagerly); the stub starts empty and healthy."""
    stub = {"CELERY_EAGER": False, "CELERY_APP": "tests.test_resend.STUB_APP"}
    settings.DATAFLOW = {**settings.DATAFLOW, **stub}
    TASK.sent.clear()
    TASK.error = None
    return TASK


def submit(capture: Any, age: float, queue: str = "etl") -> str:
    """A pending Celery run submitted age seconds ago whose message the broker then lost."""
    workflow = build([("ProductCreateNode", "p", {"name": "Lamp", "sku": f"R-{age}", "price": "1.00"})])
    with capture(execute=True):
        handle = CeleryRuntime(queue).submit(workflow)
    WorkflowRun.objects.filter(pk=handle.run_id).update(created_at=timezone.now() - timedelta(seconds=age))
    TASK.sent.clear()  # the first message is the one that was lost
    return handle.run_id


def test_only_old_pending_celery_runs_are_sent_again(capture: Any) -> None:
    old, older = submit(capture, 700), submit(capture, 900)
    young = submit(capture, 10)
    finished = submit(capture, 800)
    WorkflowRun.objects.filter(pk=finished).update(status="succeeded")
    WorkflowRun.objects.create(workflow={"nodes": []}, runtime="celery-eager", status="pending",
                               created_at=timezone.now() - timedelta(hours=1))

    outcomes = resend_stale_runs("default", 600, queue="etl")

    assert [o.run_id for o in outcomes] == [older, old]  # oldest first
    assert all(o.error is None for o in outcomes)
    task_ids = {str(r.pk): r.celery_task_id for r in WorkflowRun.objects.all()}
    assert TASK.sent == [
        {"kwargs": {"run_id": run_id, "using": "default"}, "task_id": task_ids[run_id], "queue": "etl"}
        for run_id in (older, old)
    ]
    assert young not in {o.run_id for o in outcomes}
    assert WorkflowRun.objects.get(pk=old).status == "pending"  # sending changes no row


def test_dry_run_and_limit(capture: Any) -> None:
    first, second = submit(capture, 900), submit(capture, 700)
    assert [o.run_id for o in resend_stale_runs("default", 600, dry_run=True)] == [first, second]
    assert TASK.sent == []
    assert [o.run_id for o in resend_stale_runs("default", 600, limit=1)] == [first]
    assert [m["kwargs"]["run_id"] for m in TASK.sent] == [first]


def test_a_failed_send_is_reported_and_the_run_stays_pending(capture: Any) -> None:
    run_id = submit(capture, 700)
    TASK.error = ConnectionRefusedError("broker down")
    [outcome] = resend_stale_runs("default", 600)
    assert isinstance(outcome.error, ConnectionRefusedError)
    assert WorkflowRun.objects.get(pk=run_id).status == "pending"  # not failed: a later resend may work


def test_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="older_than"):
        stale_pending_runs("default", -1)


def test_eager_runs_have_no_message_to_send() -> None:
    handle = RunHandle("0" * 32, "", using="default", eager=True)
    with pytest.raises(DataflowError, match="eager mode"):
        handle.send()


def test_command_sends_and_reports(capture: Any, capsys: Any) -> None:
    run_id = submit(capture, 700)
    call_command("dataflow_resend", "--older-than", "600", "--queue", "etl")
    out = capsys.readouterr().out
    assert f"sent       {run_id}" in out and "1 run(s) sent to queue 'etl'" in out
    assert [m["queue"] for m in TASK.sent] == ["etl"]


def test_command_default_queue_and_nothing_stale(capsys: Any) -> None:
    call_command("dataflow_resend")
    expected = "0 run(s) sent to queue 'dataflow' (no pending run is older than the bound)"
    assert expected in capsys.readouterr().out


def test_command_exit_code_1_when_a_send_fails(capture: Any) -> None:
    submit(capture, 700)
    TASK.error = ConnectionRefusedError("broker down")
    with pytest.raises(CommandError, match="1 run") as caught:
        call_command("dataflow_resend")
    assert caught.value.returncode == 1


@pytest.mark.parametrize("args", [["--older-than", "-5"], ["--limit", "0"], ["--older-than", "soon"]])
def test_command_usage_errors(args: list[str]) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("dataflow_resend", *args)
    assert "--older-than" in str(caught.value) or "--limit" in str(caught.value)
