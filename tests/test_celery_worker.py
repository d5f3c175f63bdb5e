"""CeleryRuntime against real worker processes and a real Redis (PostgreSQL pass only).

The workers are `celery -A testproject worker` subprocesses on pytest-django's test database
(transaction=True, so what a test writes is committed and visible to them). Faults are real:
kill -9 of a whole worker mid-run, pg_terminate_backend of the worker's connection mid-run,
and eight concurrent runs upserting the same keys.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction

from django_dataflow import CeleryRuntime, NodeExecutionError, RecordNotFound, WorkflowBuilder
from django_dataflow.exceptions import DataflowError, RunCancelled
from django_dataflow.models import WorkflowDefinition, WorkflowRun
from shop.models import Order, Product, StockLevel
from tests.celery_support import WorkerProcess, client_app, require_celery_and_redis, sending_to
from tests.conftest import build

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SESSION = uuid.uuid4().hex[:8]
QUEUE = f"dataflow-test-{SESSION}"


@pytest.fixture(scope="module")
def db_name(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """pytest-django's test database name (test_<NAME>), which the workers must use."""
    require_celery_and_redis()
    yield str(connections["default"].settings_dict["NAME"])
    _drop_test_queues()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the worker logs go (printed when a test fails)."""
    return tmp_path_factory.mktemp("celery-workers")


@pytest.fixture(scope="module")
def worker(db_name: str, log_dir: Path) -> Iterator[WorkerProcess]:
    """One worker for the module's ordinary tests, on the session's queue."""
    process = WorkerProcess(QUEUE, db_name, log_dir, concurrency=4).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def single_worker(db_name: str, log_dir: Path) -> Iterator[WorkerProcess]:
    """A one-process worker, for tests that must know which connection served a run."""
    process = WorkerProcess(f"{QUEUE}-single", db_name, log_dir, concurrency=1).start()
    yield process
    process.stop()


def _drop_test_queues() -> None:
    # Messages left in this session's queues (e.g. the one no worker consumes) would otherwise
    # stay in the test Redis forever.
    import redis

    from tests.celery_support import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{QUEUE}*"))  # the queues and their kombu bindings
    if keys:
        client.delete(*keys)


def send_again(run_id: str, queue: str = QUEUE) -> dict[str, Any]:
    """Deliver the run's task once more, as a broker redelivery would, and return its result."""
    import django_dataflow.tasks  # noqa: F401  (registers the task with the client app)

    task = client_app.tasks["django_dataflow.run_workflow"]
    return task.apply_async(kwargs={"run_id": run_id}, queue=queue).get(timeout=30)


@pytest.fixture(autouse=True)
def through_the_test_redis() -> Iterator[None]:
    """CeleryRuntime() sends through the test Redis to this session's queue, never eagerly."""
    with sending_to(QUEUE):
        yield


def create_workflow(sku: str, price: str = "19.99") -> Any:
    """Create a product and an order of it, connected."""
    return build(
        [
            ("ProductCreateNode", "product", {"name": "Lamp", "sku": sku, "price": price}),
            ("OrderCreateNode", "order", {"quantity": "{{qty}}"}),
        ],
        [("product", "id", "order", "product_id")],
    )


def eventually(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def bulk_orders(product: Product, count: int, batch_size: int = 1000) -> Any:
    """One BulkCreate node inserting count orders of one product."""
    rows = [{"product_id": product.pk, "quantity": 1 + i % 7} for i in range(count)]
    return build([("OrderBulkCreateNode", "load", {"data": rows, "batch_size": batch_size})])


# ---------------------------------------------------------------------------------------- basics


def test_submit_wait_round_trip(worker: WorkerProcess) -> None:
    handle = CeleryRuntime().submit(create_workflow("RT-1"), inputs={"qty": 3})
    assert handle.run_id and handle.task_id and handle.run_id != handle.task_id
    assert handle.status() in ("pending", "running", "succeeded")

    results = handle.wait(timeout=30)

    assert results["product"]["sku"] == "RT-1"
    assert results["order"]["quantity"] == 3
    assert results["order"]["product_id"] == results["product"]["id"]
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.attempts, run.runtime) == ("succeeded", 1, "celery")
    assert run.celery_task_id == handle.task_id
    assert run.results == results
    assert set(run.node_stats) == {"product", "order"}
    assert run.started_at <= run.finished_at
    assert Order.objects.get().product.sku == "RT-1"
    assert handle.status() == "succeeded"
    assert handle.progress() is None  # finished: no live progress


def test_execute_is_submit_plus_wait(worker: WorkerProcess) -> None:
    results, run_id = CeleryRuntime().execute(create_workflow("RT-2"), inputs={"qty": 1})
    assert results["product"]["sku"] == "RT-2"
    assert WorkflowRun.objects.get(pk=run_id).status == "succeeded"


def test_failure_is_reraised_and_rolled_back(worker: WorkerProcess) -> None:
    workflow = build([
        ("ProductCreateNode", "ok", {"name": "Desk", "sku": "F-1", "price": "120"}),
        ("ProductCreateNode", "bad", {"name": "Chair", "sku": "F-2", "price": "cheap"}),
    ])
    handle = CeleryRuntime().submit(workflow)

    with pytest.raises(NodeExecutionError) as caught:
        handle.wait(timeout=30)

    error = caught.value
    assert (error.node_id, error.node_type, error.run_id) == ("bad", "ProductCreateNode", handle.run_id)
    assert "price" in str(error)
    assert not Product.objects.exists()  # node 'ok' was rolled back with it
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.error_node, run.attempts) == ("failed", "bad", 1)  # not retried
    assert str(error) == run.error


def test_record_not_found_keeps_its_type(worker: WorkerProcess) -> None:
    handle = CeleryRuntime().submit(build([("ProductReadNode", "read", {"id": 999_999})]))
    with pytest.raises(RecordNotFound) as caught:
        handle.wait(timeout=30)
    assert caught.value.node_id == "read"


def test_submit_is_sent_on_commit_only(worker: WorkerProcess) -> None:
    with transaction.atomic():
        handle = CeleryRuntime().submit(create_workflow("OC-1"), inputs={"qty": 1})
        with pytest.raises(DataflowError, match="commits"):
            handle.wait(timeout=1)
        assert not handle.dispatched
        # Not visible outside this transaction: a worker could not have found it.
        other = _other_connection_count(WorkflowRun, handle.run_id)
        assert other == 0
        time.sleep(0.5)
        assert client_app.AsyncResult(handle.task_id).state == "PENDING"  # nothing sent yet
    assert handle.dispatched
    assert handle.wait(timeout=30)["product"]["sku"] == "OC-1"


def test_rolled_back_submit_sends_nothing(worker: WorkerProcess) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        handle = CeleryRuntime().submit(create_workflow("RB-1"), inputs={"qty": 1})
        1 / 0  # noqa: B018
    assert not handle.dispatched
    assert not WorkflowRun.objects.filter(pk=handle.run_id).exists()
    with pytest.raises(DataflowError, match="does not exist"):
        handle.wait(timeout=1)
    time.sleep(0.5)
    assert client_app.AsyncResult(handle.task_id).state == "PENDING"
    assert not Product.objects.exists()


def _other_connection_count(model: Any, pk: Any) -> int:
    """Rows with this pk seen by a separate connection (what a worker would see)."""
    import psycopg

    from tests.celery_support import database_url

    table = model._meta.db_table
    with psycopg.connect(database_url(connection.settings_dict["NAME"])) as other:
        return other.execute(f'SELECT count(*) FROM "{table}" WHERE run_id = %s', [pk]).fetchone()[0]


def test_cancel_before_start(worker: WorkerProcess) -> None:
    # A queue no worker consumes keeps the run pending for as long as the test needs.
    idle_queue = f"{QUEUE}-nobody"
    handle = CeleryRuntime(queue=idle_queue).submit(create_workflow("C-1"), inputs={"qty": 1})
    assert handle.status() == "pending"

    assert handle.cancel() is True
    assert handle.cancel() is False  # already cancelled
    assert handle.status() == "cancelled"
    with pytest.raises(RunCancelled):
        handle.wait(timeout=5)

    # Even if the message is delivered after all, the worker does nothing with it.
    assert send_again(handle.run_id)["state"] == "skipped"
    assert handle.status() == "cancelled"
    assert not Product.objects.exists()


def test_cancel_after_finish_is_refused(worker: WorkerProcess) -> None:
    handle = CeleryRuntime().submit(create_workflow("C-2"), inputs={"qty": 1})
    handle.wait(timeout=30)
    assert handle.cancel() is False
    assert handle.status() == "succeeded"


def test_redelivered_message_of_a_succeeded_run_does_nothing(worker: WorkerProcess) -> None:
    handle = CeleryRuntime().submit(create_workflow("ID-1"), inputs={"qty": 1})
    handle.wait(timeout=30)

    assert send_again(handle.run_id) == {"run_id": handle.run_id, "state": "skipped"}
    assert WorkflowRun.objects.get(pk=handle.run_id).attempts == 1
    assert Product.objects.count() == 1 and Order.objects.count() == 1


def test_lost_message_is_sent_again_and_runs_once(worker: WorkerProcess) -> None:
    import redis

    from django_dataflow.runtime.resend import resend_stale_runs
    from tests.celery_support import REDIS_URL

    lost_queue = f"{QUEUE}-lost"
    handle = CeleryRuntime(queue=lost_queue).submit(create_workflow("L-1"), inputs={"qty": 1})
    # The broker loses the message (e.g. Redis restarted without persistence).
    assert redis.Redis.from_url(REDIS_URL).delete(lost_queue) == 1
    assert handle.status() == "pending"

    [outcome] = resend_stale_runs("default", 0, queue=QUEUE)
    assert outcome.run_id == handle.run_id and outcome.error is None
    assert handle.wait(timeout=30)["product"]["sku"] == "L-1"
    # Sending once more after it ran (a message that was only slow) changes nothing.
    assert resend_stale_runs("default", 0, queue=QUEUE) == []
    assert send_again(handle.run_id)["state"] == "skipped"
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.attempts, Product.objects.count()) == ("succeeded", 1, 1)


def test_run_by_name_async(worker: WorkerProcess) -> None:
    import django_dataflow

    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "p", {"name": "Nightly", "sku": "{{sku}}", "price": "1"})
    WorkflowDefinition.objects.create(name="nightly_import", workflow=builder.build().to_dict())

    handle = django_dataflow.run("nightly_import", inputs={"sku": "N-1"}, async_=True)

    assert handle.wait(timeout=30)["p"]["sku"] == "N-1"
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.definition, run.definition_version, run.runtime) == ("nightly_import", 1, "celery")


# ------------------------------------------------------------------------- wait(on_update=...)


def _statuses(updates: list[tuple[str, Any]]) -> list[str]:
    """The statuses the callback saw, each once, in the order it first saw them."""
    return list(dict.fromkeys(status for status, _ in updates))


def test_wait_on_update_sees_pending_running_progress_and_the_final_row(worker: WorkerProcess) -> None:
    """Held at each stage by the test itself: parked in a queue nobody consumes until the callback
    saw it pending, then blocked on a row lock after its bulk node until the callback saw that
    node's last progress report."""
    import psycopg

    from tests.celery_support import database_url

    product = Product.objects.create(name="Bulk", sku="W-1", price="1")
    locked = Product.objects.create(name="Locked", sku="W-2", price="1")
    workflow = build([
        ("OrderBulkCreateNode", "load", {
            "data": [{"product_id": product.pk, "quantity": 1} for _ in range(50)], "batch_size": 10,
        }),
        ("ProductUpdateNode", "touch", {"id": locked.pk, "fields": {"name": "Touched"}}),
    ])
    updates: list[tuple[str, Any]] = []
    finals: list[WorkflowRun] = []
    with psycopg.connect(database_url(connection.settings_dict["NAME"])) as locker:
        table = Product._meta.db_table
        locker.execute(f'SELECT id FROM "{table}" WHERE id = %s FOR UPDATE', [locked.pk])
        handle = CeleryRuntime(queue=f"{QUEUE}-parked").submit(workflow)

        def on_update(run: WorkflowRun, progress: dict[str, Any] | None) -> None:
            updates.append((run.status, progress))
            finals.append(run)
            if run.status == "pending" and handle.queue != QUEUE:
                handle.queue = QUEUE
                handle.send()  # now a worker gets it
            if progress == {"node": "load", "done": 50, "total": 50}:
                locker.commit()  # lets node 'touch' through

        results = handle.wait(timeout=60, on_update=on_update)

    assert _statuses(updates) == ["pending", "running", "succeeded"]
    assert ("running", {"node": "load", "done": 50, "total": 50}) in updates
    assert all(progress is None for status, progress in updates if status != "running")
    assert len(updates) == len({(s, json.dumps(p, sort_keys=True)) for s, p in updates})  # changes only
    final = finals[-1]
    assert (final.status, final.results, set(final.node_stats)) == ("succeeded", results, {"load", "touch"})
    assert results["touch"]["name"] == "Touched"


def test_wait_on_update_sees_a_failed_run_and_the_error_is_raised(worker: WorkerProcess) -> None:
    handle = CeleryRuntime().submit(build([
        ("ProductCreateNode", "ok", {"name": "Desk", "sku": "WF-1", "price": "120"}),
        ("ProductCreateNode", "bad", {"name": "Chair", "sku": "WF-2", "price": "cheap"}),
    ]))
    updates: list[tuple[str, Any]] = []

    with pytest.raises(NodeExecutionError) as caught:
        handle.wait(timeout=30, on_update=lambda run, progress: updates.append((run.status, progress)))

    assert caught.value.node_id == "bad"
    statuses = _statuses(updates)
    assert statuses[-1] == "failed"
    assert statuses == [s for s in ("pending", "running", "failed") if s in statuses]  # in order
    assert not Product.objects.exists()


def test_dataflow_run_wait_on_a_terminal_shows_an_async_run(worker: WorkerProcess, tmp_path: Path) -> None:
    from tests.commands.helpers import run_on_a_terminal as command

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(create_workflow("{{sku}}").to_dict()))
    bad.write_text(json.dumps(create_workflow("CMD-3", price="cheap").to_dict()))

    code, out, err = command(str(good), "--wait", "--input=sku=CMD-1", "--input=qty=2", "--timeout=30")
    assert code == 0
    run = WorkflowRun.objects.get()
    lines = err.splitlines()
    assert lines[-3].startswith("product: done, 1 rows in ")
    assert lines[-2].startswith("order: done, 1 rows in ")
    assert lines[-1] == f"run {run.run_id}: succeeded"
    before = {f"run {run.run_id}: pending (waiting for a worker)", f"run {run.run_id}: running"}
    assert set(lines[:-3]) <= before  # what it saw of the run before it finished
    assert out.startswith(f"run {run.run_id} succeeded\n")

    code, out, err = command(str(good), "--wait", "--input=sku=CMD-2", "--input=qty=3", "--json")
    assert (code, err) == (0, "")  # nothing but the document
    assert json.loads(out)["results"]["order"]["quantity"] == 3

    code, out, err = command(str(bad), "--wait", "--input", "qty=1")
    assert code == 1
    failed = WorkflowRun.objects.get(status="failed")
    assert f"run {failed.run_id}: failed" in err.splitlines()
    assert f"run {failed.run_id} failed: node 'product'" in err


# ------------------------------------------------------------------------------- faults, progress


def test_kill_9_worker_mid_run_runs_exactly_once(db_name: str, log_dir: Path) -> None:
    """200k rows; the worker dies by SIGKILL mid-run; a new worker finishes the run exactly once."""
    queue = f"{QUEUE}-kill"
    product = Product.objects.create(name="Bulk", sku="K-1", price="1")
    total = 200_000
    first = WorkerProcess(queue, db_name, log_dir, concurrency=2).start()
    second: WorkerProcess | None = None
    try:
        handle = CeleryRuntime(queue=queue).submit(bulk_orders(product, total))
        progress = eventually(
            lambda: (p := handle.progress()) and p["done"] >= 20_000 and p, 90, "progress past 20k rows"
        )
        # Progress comes from Celery's task state while the run's transaction is still open.
        assert progress["node"] == "load" and progress["total"] == total
        assert handle.status() == "running"
        assert Order.objects.count() == 0

        first.kill()

        run = WorkflowRun.objects.get(pk=handle.run_id)
        assert (run.status, run.attempts) == ("running", 1)
        assert Order.objects.count() == 0  # the dead attempt's transaction was rolled back
        second = WorkerProcess(queue, db_name, log_dir, concurrency=2).start()

        results = handle.wait(timeout=150)

        assert results == {"load": {"created": total}}
        assert Order.objects.count() == total
        run = WorkflowRun.objects.get(pk=handle.run_id)
        assert (run.status, run.attempts) == ("succeeded", 2)
        # Redis hands the message of a long live run out again after the visibility timeout: such
        # duplicates found the run locked or finished and did nothing.
        time.sleep(1)
        assert WorkflowRun.objects.get(pk=handle.run_id).attempts == 2
        assert Order.objects.count() == total
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _terminate_worker_transactions(db_name: str) -> int:
    """pg_terminate_backend every other session on the test database inside a write transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL",
            [db_name],
        )
        return len(cursor.fetchall())


def test_connection_killed_mid_run_is_retried(single_worker: WorkerProcess, db_name: str) -> None:
    product = Product.objects.create(name="Bulk", sku="T-1", price="1")
    total = 40_000
    handle = CeleryRuntime(queue=single_worker.queue).submit(bulk_orders(product, total, batch_size=500))
    eventually(lambda: (p := handle.progress()) and p["done"] >= 4_000, 60, "progress past 4k rows")

    assert _terminate_worker_transactions(db_name) == 1

    assert handle.wait(timeout=90) == {"load": {"created": total}}
    assert Order.objects.count() == total
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.attempts) == ("succeeded", 2)
    lines = single_worker.log().splitlines()
    retried = [line for line in lines if handle.task_id in line and "Retry in" in line]
    assert retried, single_worker.log()[-3000:]
    assert "terminating connection" in retried[0] or "OperationalError" in retried[0]


def test_worker_reconnects_after_idle_connection_was_dropped(
    single_worker: WorkerProcess, db_name: str
) -> None:
    runtime = CeleryRuntime(queue=single_worker.queue)
    runtime.execute(create_workflow("IC-1"), inputs={"qty": 1})  # the worker keeps its connection
    reconnects = single_worker.log().count("dropped while idle")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [db_name],
        )
        assert cursor.fetchall()  # the worker's idle connection was cut

    results, run_id = runtime.execute(create_workflow("IC-2"), inputs={"qty": 1}, timeout=30)

    assert results["product"]["sku"] == "IC-2"
    assert WorkflowRun.objects.get(pk=run_id).attempts == 1  # reconnected at once, no retry
    assert single_worker.log().count("dropped while idle") == reconnects + 1


def test_concurrent_upserts_of_overlapping_keys(worker: WorkerProcess) -> None:
    """8 runs at once, each upserting 1,500 of 5,000 (product, warehouse) keys, half of them in
    reverse order (deadlocks are retried): no duplicates, and no update lost or interleaved."""
    products = [Product.objects.create(name=f"P{i}", sku=f"UP-{i}", price="1") for i in range(5)]
    keys = [(p.pk, f"w{w:04d}") for p in products for w in range(1000)]
    runs: list[tuple[int, list[tuple[int, str]]]] = []
    for index in range(8):
        chosen = keys[index * 450: index * 450 + 1500]
        if index % 2:
            chosen = chosen[::-1]
        runs.append((index + 1, chosen))
    handles = []
    for value, chosen in runs:
        data = [{"product_id": p, "warehouse": w, "quantity": value} for p, w in chosen]
        workflow = build([(
            "StockBulkUpsertNode", "upsert",
            {"data": data, "conflict_on": ["product", "warehouse"], "update_fields": ["quantity"],
             "batch_size": 2000},
        )])
        handles.append(CeleryRuntime().submit(workflow))

    results = [h.wait(timeout=120)["upsert"] for h in handles]

    touched = {k for _, chosen in runs for k in chosen}
    rows = list(StockLevel.objects.values_list("product_id", "warehouse", "quantity"))
    assert len(rows) == len({(p, w) for p, w, _ in rows}) == len(touched)  # no duplicates
    assert sum(r["created"] for r in results) == len(touched)
    assert sum(r["created"] + r["updated"] for r in results) == sum(len(c) for _, c in runs)
    final = {(p, w): q for p, w, q in rows}
    writers = {value: set(chosen) for value, chosen in runs}
    for key, value in final.items():
        assert key in writers[value]  # the final value came from a run that wrote that key
    # Each run committed all of its rows at once: between two runs, one wins on every shared key.
    for (a, keys_a), (b, keys_b) in itertools.combinations(writers.items(), 2):
        shared = keys_a & keys_b
        winners = {final[k] for k in shared} - {v for v in writers if v not in (a, b)}
        assert len(winners) <= 1, (a, b, winners)
    statuses = WorkflowRun.objects.filter(pk__in=[h.run_id for h in handles]).values_list("status", flat=True)
    assert set(statuses) == {"succeeded"}
