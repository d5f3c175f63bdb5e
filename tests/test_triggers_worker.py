"""Triggers against real processes (PostgreSQL pass): Celery workers, beat's DatabaseScheduler
driven with a controlled clock, and one real `celery beat -S django` process.

The workers run with SHOP_TRIGGERS=1, so they register the same model-change triggers
(testproject/shop/triggers.py) as this process: a run's own writes meet the loop guard there.
Per-tenant schedules are stored and passed to the runtime as tenant=; running them in each
tenant's schema is tested once django-tenants is part of the project (docs/triggers.md).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connections, transaction

import django_dataflow
from django_dataflow import CeleryRuntime, NodeExecutionError
from django_dataflow.models import DefinitionSchedule, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers.model_events import ModelTrigger
from shop import triggers as shop_triggers
from shop.models import Customer, Product, StockLevel
from tests.celery_support import (
    ROOT,
    WorkerProcess,
    client_app,
    make_client_app,
    require_celery_and_redis,
    sending_to,
)
from tests.conftest import build

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SESSION = uuid.uuid4().hex[:8]
QUEUE = f"dataflow-test-triggers-{SESSION}"


@pytest.fixture(scope="module")
def db_name(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """pytest-django's test database name, which the workers and beat must use."""
    require_celery_and_redis()
    yield str(connections["default"].settings_dict["NAME"])
    import redis

    from tests.celery_support import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{QUEUE}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def worker(db_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A worker with the shop's triggers registered, consuming this module's queue."""
    process = WorkerProcess(
        QUEUE, db_name, tmp_path_factory.mktemp("trigger-workers"), concurrency=2,
        env={"SHOP_TRIGGERS": "1"},
    ).start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def through_the_test_redis() -> Iterator[None]:
    """Runs (and schedules' periodic tasks) go to this module's queue."""
    with sending_to(QUEUE):
        yield


@pytest.fixture
def shop_triggers_here() -> Iterator[list[ModelTrigger]]:
    """The shop's triggers in this process too (the test's own writes fire them)."""
    made = shop_triggers.register()
    yield made
    for trigger in made:
        trigger.disconnect()


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def define(name: str, nodes: list[tuple], **fields: Any) -> WorkflowDefinition:
    """A saved definition."""
    return WorkflowDefinition.objects.create(name=name, workflow=build(nodes).to_dict(), **fields)


def finished_runs(definition: str, count: int = 1, timeout: float = 60) -> list[WorkflowRun]:
    """Wait until `count` runs of the definition finished and their tasks returned; oldest first."""

    def finished() -> list[WorkflowRun] | None:
        found = list(WorkflowRun.objects.filter(definition=definition).order_by("created_at"))
        done = [r for r in found if r.status in ("succeeded", "failed")]
        return found if len(done) >= count else None

    found = eventually(finished, timeout, f"{count} finished run(s) of {definition!r}")
    for run in found:  # the task returns after the commit's callbacks (triggers, follow-ups) ran
        if run.status in ("succeeded", "failed"):
            client_app.AsyncResult(run.celery_task_id).get(timeout=timeout, propagate=False)
    return list(WorkflowRun.objects.filter(definition=definition).order_by("created_at"))


def test_a_trigger_fires_once_after_commit_and_not_in_a_loop(
    worker: WorkerProcess, shop_triggers_here: list[ModelTrigger],
) -> None:
    define("welcome", [("CustomerUpdateNode", "mark", {"id": "{{pk}}", "fields": {"tier": "welcomed"}})])
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.create(name="Gone", email="gone@example.com")
        raise RuntimeError("roll back")
    with transaction.atomic():
        customer = Customer.objects.create(name="Ada", email="ada@example.com")
    [run] = finished_runs("welcome")
    # The run (in the worker) updated the row that started it: "updated" -> welcome was guarded.
    assert run.status == "succeeded", run.error
    assert run.runtime == "celery"
    assert (run.inputs["pk"], run.inputs["email"]) == (customer.pk, "ada@example.com")
    customer.refresh_from_db()
    assert customer.tier == "welcomed"
    assert WorkflowRun.objects.filter(definition="welcome").count() == 1


def test_a_bulk_node_in_a_worker_fires_once_with_every_pk(worker: WorkerProcess) -> None:
    define("audit", [("ProductCountNode", "count", {})])
    rows = [{"name": f"P{i}", "sku": f"B-{i}", "price": "1.00"} for i in range(5)]
    handle = CeleryRuntime().submit(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    assert handle.wait(60)["load"] == {"created": 5}
    [audit] = finished_runs("audit")
    assert audit.status == "succeeded"
    assert sorted(audit.inputs["pks"]) == sorted(Product.objects.values_list("pk", flat=True))
    assert (str(audit.parent_run_id), audit.chain_depth) == (handle.run_id, 1)


def test_concurrent_upserts_split_their_keys_exactly(worker: WorkerProcess) -> None:
    """8 overlapping upserts at once (the worker runs 2 at a time): every stock row is in exactly one
    run's "created" keys, and each upsert's created and updated keys are exactly its own rows."""
    define("stock-audit", [("StockCountNode", "count", {})])
    products = [Product.objects.create(name=f"P{i}", sku=f"SK-{i}", price="1") for i in range(2)]
    keys = [(p.pk, f"w{w:03d}") for p in products for w in range(500)]
    chosen = [keys[index * 100: index * 100 + 300] for index in range(8)]
    handles = []
    for index, mine in enumerate(chosen):
        data = [{"product_id": p, "warehouse": w, "quantity": index} for p, w in mine[:: 1 - 2 * (index % 2)]]
        handles.append(CeleryRuntime().submit(build([(
            "StockBulkUpsertNode", "upsert",
            {"data": data, "conflict_on": ["product", "warehouse"], "update_fields": ["quantity"]},
        )])))
    results = {h.run_id: h.wait(timeout=120)["upsert"] for h in handles}
    expected = sum(bool(r["created"]) + bool(r["updated"]) for r in results.values())
    audits = finished_runs("stock-audit", expected, timeout=120)
    assert len(audits) == expected
    split: dict[tuple[str, str], list[int]] = {}
    for audit in audits:
        key = (str(audit.parent_run_id), audit.inputs["event"])
        assert key not in split  # one submission per upsert and event
        split[key] = audit.inputs["pks"]
    ids = {(p, w): pk for p, w, pk in StockLevel.objects.values_list("product_id", "warehouse", "pk")}
    created = [pk for (_run, event), pks in split.items() if event == "created" for pk in pks]
    assert sorted(created) == sorted(ids.values())  # each row created exactly once overall
    for handle, mine in zip(handles, chosen, strict=True):
        made = split.get((handle.run_id, "created"), [])
        changed = split.get((handle.run_id, "updated"), [])
        result = results[handle.run_id]
        assert (len(made), len(changed)) == (result["created"], result["updated"])
        assert sorted(made + changed) == sorted(ids[k] for k in mine)


@pytest.mark.usefixtures("worker")
def test_a_follow_up_gets_the_results_and_a_failure_only_its_on_failure_follow_up() -> None:
    define("first", [("ProductCreateNode", "create", {"name": "Lamp", "sku": "{{sku}}", "price": "2.50"})],
           on_success=["second"], on_failure=["cleanup"])
    define("second", [("ProductCountNode", "count", {})])
    define("cleanup", [("ProductCountNode", "count", {})])
    ok = django_dataflow.run("first", {"sku": "C-1"}, async_=True)
    ok.wait(60)
    [second] = finished_runs("second")
    assert second.status == "succeeded"
    assert second.inputs["results"]["create"]["sku"] == "C-1"
    assert (second.inputs["run_id"], str(second.parent_run_id)) == (ok.run_id, ok.run_id)
    failing = django_dataflow.run("first", {"sku": "C-1"}, async_=True)  # the sku is taken now
    with pytest.raises(NodeExecutionError):
        failing.wait(60)
    [cleanup] = finished_runs("cleanup")
    assert cleanup.inputs["run_id"] == failing.run_id and cleanup.inputs["status"] == "failed"
    assert "sku" in cleanup.inputs["error"]
    assert WorkflowRun.objects.filter(definition="second").count() == 1  # the failure started none


@pytest.mark.schedules
def test_beat_database_scheduler_fires_at_the_crontab_time(worker: WorkerProcess) -> None:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
    from django_celery_beat.tzcrontab import TzAwareCrontab

    create = ("ProductCreateNode", "create", {"name": "N", "sku": "{{sku}}", "price": "1"})
    definition = define("nightly", [create])
    schedule = DefinitionSchedule.objects.create(
        definition=definition, crontab="0 3 * * *", inputs={"sku": "N-1"}
    )
    PeriodicTask.objects.filter(name=schedule.task_name).update(
        last_run_at=dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)
    )
    clock = [dt.datetime(2026, 1, 2, 2, 59, 30, tzinfo=dt.UTC)]
    app = make_client_app()
    # django-celery-beat >= 2.8 reads only the crontab rows whose hour is within two hours of the
    # scheduler's "now" (schedulers.aware_now / now); unfrozen, a 03:00 row vanishes after 05:59.
    with (
        mock.patch.object(TzAwareCrontab, "nowfunc", lambda self: clock[0]),
        mock.patch.object(ModelEntry, "_default_now", lambda self: clock[0]),
        mock.patch("django_celery_beat.schedulers.aware_now", lambda: clock[0]),
        mock.patch("django_celery_beat.schedulers.now", lambda: clock[0]),
    ):
        scheduler = DatabaseScheduler(app=app)
        assert scheduler.tick() > 0  # 02:59:30: not due yet
        time.sleep(1)
        assert not WorkflowRun.objects.filter(definition="nightly").exists()
        clock[0] = dt.datetime(2026, 1, 2, 3, 0, 5, tzinfo=dt.UTC)
        assert scheduler.tick() == 0  # 03:00:05: sent
    [run] = finished_runs("nightly")
    assert run.status == "succeeded", run.error
    assert run.trigger == {"kind": "schedule", "schedule": schedule.pk}
    assert Product.objects.filter(sku="N-1").exists()
    schedule.refresh_from_db()
    assert str(schedule.last_run_id) == str(run.run_id)


@pytest.mark.schedules
def test_an_overlapping_fire_is_skipped_by_the_worker(worker: WorkerProcess) -> None:
    definition = define("slow", [("ProductCountNode", "count", {})])
    schedule = DefinitionSchedule.objects.create(definition=definition, interval_seconds=3600)
    unfinished = WorkflowRun.objects.create(
        workflow={}, definition="slow", status="running", runtime="celery"
    )
    outcome = client_app.send_task(
        "django_dataflow.fire_schedule", kwargs={"schedule_id": schedule.pk}, queue=QUEUE
    ).get(timeout=60)
    assert outcome == [{"state": "skipped", "tenant": None, "running": str(unfinished.pk)}]
    schedule.refresh_from_db()
    assert schedule.skipped_fires == 1
    assert "fire skipped" in worker.log()
    assert WorkflowRun.objects.filter(definition="slow").count() == 1


@pytest.mark.schedules
def test_a_real_beat_process_runs_a_schedule(worker: WorkerProcess, tmp_path: Path) -> None:
    definition = define("heartbeat", [("ProductCountNode", "count", {})])
    DefinitionSchedule.objects.create(definition=definition, interval_seconds=1)
    log = tmp_path / "beat.log"
    with log.open("ab") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "testproject", "beat", "-S", "django",
             "--max-interval", "1", "-l", "info"],
            cwd=ROOT, env=worker.environment(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        runs = finished_runs("heartbeat", count=2, timeout=90)
    except AssertionError:
        raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)
    assert all(r.trigger and r.trigger["kind"] == "schedule" for r in runs)
    assert all(r.status == "succeeded" for r in runs[:2])
