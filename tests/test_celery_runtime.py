"""CeleryRuntime without a worker: eager mode, on_commit deferral, retries, validation, helpers.

These run on every backend; tests/test_celery_worker.py runs the same runtime on real workers.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

import django_dataflow
from django_dataflow import CeleryRuntime, NodeExecutionError, RecordNotFound, WorkflowValidationError, conf
from django_dataflow import celery as dataflow_celery
from django_dataflow.exceptions import DataflowError, PermissionDenied, RunCancelled, RunTimeout
from django_dataflow.models import WorkflowRun
from django_dataflow.runtime import broker, executor, retries, worker
from django_dataflow.runtime.celery import ProgressThrottle, RunHandle, is_eager, is_transient
from django_dataflow.tenancy import TenantError
from shop.models import Order, Product
from tests.conftest import build

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager(settings: Any) -> None:
    """Eager whatever the environment says (a developer may export CELERY_BROKER_URL)."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "CELERY_RETRY_DELAY": 0.01}


def create_workflow(sku: str = "E-1", price: str = "19.99") -> Any:
    """Create a product and an order of it, connected."""
    return build(
        [
            ("ProductCreateNode", "product", {"name": "Lamp", "sku": sku, "price": price}),
            ("OrderCreateNode", "order", {"quantity": "{{qty}}"}),
        ],
        [("product", "id", "order", "product_id")],
    )


# ----------------------------------------------------------------------------- eager round trips


def test_eager_submit_runs_when_the_transaction_commits(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 2})
        assert handle.status() == "pending"
        assert not Product.objects.exists()
        with pytest.raises(DataflowError, match="commits"):
            handle.wait(timeout=1)
    assert len(callbacks) == 1

    results = handle.wait(timeout=5)

    assert results["order"]["quantity"] == 2
    assert Order.objects.get().product.sku == "E-1"
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.attempts, run.runtime, run.celery_task_id) == ("succeeded", 1, "celery-eager", "")
    assert run.results == results
    assert handle.progress() is None


def test_eager_runs_through_the_one_executor(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = executor.execute

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("before_commit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(executor, "execute", spy)
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
    handle.wait(timeout=5)
    assert len(calls) == 1 and calls[0] is not None  # success is recorded inside its transaction


def test_execute_inside_an_open_transaction_explains_itself() -> None:
    # pytest-django's test transaction never commits, so the run can never start.
    with pytest.raises(DataflowError, match="transaction that submitted it commits"):
        CeleryRuntime().execute(create_workflow(), inputs={"qty": 1})


@pytest.mark.django_db(transaction=True)
def test_execute_outside_a_transaction_returns_results_and_run_id() -> None:
    results, run_id = CeleryRuntime().execute(create_workflow(), inputs={"qty": 1})
    assert results["product"]["sku"] == "E-1"
    assert WorkflowRun.objects.get(pk=run_id).status == "succeeded"


def test_eager_failure_is_reraised_and_rolled_back(django_capture_on_commit_callbacks: Any) -> None:
    workflow = build([
        ("ProductCreateNode", "ok", {"name": "Desk", "sku": "F-1", "price": "120"}),
        ("ProductCreateNode", "bad", {"name": "Chair", "sku": "F-2", "price": "cheap"}),
    ])
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(workflow)

    with pytest.raises(NodeExecutionError) as caught:
        handle.wait(timeout=5)

    assert (caught.value.node_id, caught.value.node_type) == ("bad", "ProductCreateNode")
    assert caught.value.run_id == handle.run_id
    assert not Product.objects.exists()
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.status, run.error_node, run.error_type) == ("failed", "bad", "NodeExecutionError")
    assert str(caught.value) == run.error


def test_record_not_found_is_reraised_as_record_not_found(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(build([("ProductReadNode", "read", {"id": 12345})]))
    with pytest.raises(RecordNotFound) as caught:
        handle.wait(timeout=5)
    assert caught.value.node_id == "read"


def test_cancel_before_the_commit(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
        assert handle.cancel() is True
        assert handle.cancel() is False
    assert handle.status() == "cancelled"
    with pytest.raises(RunCancelled):
        handle.wait(timeout=1)
    assert not Product.objects.exists()


def test_rolled_back_submission_leaves_nothing(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
            1 / 0  # noqa: B018
    assert callbacks == []
    assert not WorkflowRun.objects.exists()
    with pytest.raises(DataflowError, match="does not exist"):
        handle.wait(timeout=1)


def test_wait_times_out_on_a_run_that_never_starts() -> None:
    handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
    handle.dispatched = True  # pretend it was sent; nothing runs it in this test transaction
    with pytest.raises(RunTimeout) as caught:
        handle.wait(timeout=0.05)
    assert caught.value.status == "pending" and isinstance(caught.value, TimeoutError)


def test_handle_for_an_earlier_run(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
    again = CeleryRuntime().handle(handle.run_id)
    assert again.eager and again.status() == "succeeded"
    assert again.wait(timeout=1) == handle.wait(timeout=1)
    with pytest.raises(WorkflowRun.DoesNotExist):
        RunHandle.for_run("00000000-0000-0000-0000-000000000000")


# ----------------------------------------------------------------------------------- retries


def _flaky_executor(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """Make the executor fail with a transient error the first `failures` times."""
    calls: list[int] = []
    real = executor.execute

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            try:
                raise OperationalError("database is locked")
            except OperationalError as exc:
                raise NodeExecutionError("OperationalError: database is locked", node_id="product") from exc
        return real(*args, **kwargs)

    monkeypatch.setattr(executor, "execute", flaky)
    return calls


@pytest.mark.django_db(transaction=True)
def test_transient_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _flaky_executor(monkeypatch, failures=1)
    results, run_id = CeleryRuntime().execute(create_workflow(), inputs={"qty": 1})
    assert len(calls) == 2
    assert results["product"]["sku"] == "E-1"
    run = WorkflowRun.objects.get(pk=run_id)
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert Product.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_retries_are_bounded(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_MAX_RETRIES": 2}
    calls = _flaky_executor(monkeypatch, failures=10)
    with pytest.raises(NodeExecutionError, match="database is locked"):
        CeleryRuntime().execute(create_workflow(), inputs={"qty": 1})
    run = WorkflowRun.objects.get()
    assert (run.status, run.attempts, run.error_node) == ("failed", 3, "product")
    assert len(calls) == 3


@pytest.mark.django_db(transaction=True)
def test_validation_errors_are_not_retried() -> None:
    with pytest.raises(NodeExecutionError, match="price"):
        CeleryRuntime().execute(create_workflow(price="cheap"), inputs={"qty": 1})
    assert WorkflowRun.objects.get().attempts == 1


def test_no_retry_inside_the_callers_transaction(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A transient error aborts the surrounding transaction; retrying inside it cannot help.
    calls = _flaky_executor(monkeypatch, failures=1)
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1})
    with pytest.raises(NodeExecutionError, match="locked"):
        handle.wait(timeout=1)
    assert len(calls) == 1


def _psycopg_error(name: str, message: str = "x") -> Exception:
    errors = pytest.importorskip("psycopg.errors")
    return getattr(errors, name)(message)


def _raw_psycopg(name: str, message: str) -> NodeExecutionError:
    # The COPY paths talk to psycopg directly: its errors reach the node unwrapped by Django.
    try:
        raise NodeExecutionError(message, node_id="load") from _psycopg_error(name, message)
    except NodeExecutionError as error:
        return error


def _wrapped(django_cls: type[Exception], cause: Exception) -> NodeExecutionError:
    try:
        try:
            raise cause
        except Exception as exc:
            raise django_cls(str(exc)) from exc
    except Exception as wrapped:
        try:
            raise NodeExecutionError(str(wrapped), node_id="n") from wrapped
        except NodeExecutionError as error:
            return error


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: _wrapped(OperationalError, _psycopg_error("DeadlockDetected")), True),
        (lambda: _wrapped(OperationalError, _psycopg_error("SerializationFailure")), True),
        (lambda: _wrapped(OperationalError, _psycopg_error("AdminShutdown")), True),  # pg_terminate_backend
        (lambda: _wrapped(OperationalError, _psycopg_error("OperationalError", "server closed")), True),
        (lambda: InterfaceError("connection already closed"), True),
        (lambda: _raw_psycopg("OperationalError", "sending copy data failed: server closed"), True),
        (lambda: _raw_psycopg("InterfaceError", "the connection is closed"), True),
        (lambda: _raw_psycopg("UniqueViolation", "duplicate key"), False),
        (lambda: _wrapped(OperationalError, OperationalError("database is locked")), True),
        (lambda: _wrapped(IntegrityError, _psycopg_error("UniqueViolation")), False),
        (lambda: _wrapped(OperationalError, _psycopg_error("UndefinedTable")), False),
        (lambda: OperationalError("no such table: shop_product"), False),
        (lambda: WorkflowValidationError("bad"), False),
        (lambda: ValueError("nope"), False),
    ],
    ids=["deadlock", "serialization", "admin-shutdown", "connection-lost", "interface",
         "copy-connection-lost", "psycopg-interface", "copy-unique", "sqlite-locked",
         "unique", "undefined-table", "sqlite-no-table", "validation", "value-error"],
)
def test_transient_errors_are_classified(make: Any, expected: bool) -> None:
    assert is_transient(make()) is expected


def test_validation_error_as_cause_is_not_transient() -> None:
    try:
        raise NodeExecutionError("bad value", node_id="n") from WorkflowValidationError("bad")
    except NodeExecutionError as exc:
        assert is_transient(exc) is False


def test_retry_delays_grow_and_are_capped(settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_RETRY_DELAY": 1.0}
    assert 0.75 <= retries.retry_delay(0) <= 1.25
    assert 3.0 <= retries.retry_delay(2) <= 5.0
    assert retries.retry_delay(20) == 60.0
    assert retries.busy_delay(0) == 0.25
    assert retries.busy_delay(10) == 5.0
    # A forged counter neither overflows the float conversion nor computes a huge power of two.
    assert retries.retry_delay(10**12) == 60.0
    assert retries.busy_delay(10**12) == 5.0


# ---------------------------------------------------------------------------------- progress


def test_progress_throttle_keeps_first_last_and_node_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[dict[str, Any]] = []
    clock = iter([0.0, 0.1, 0.2, 0.3, 2.0, 2.1])
    monkeypatch.setattr(worker.time, "monotonic", lambda: next(clock))
    throttle = ProgressThrottle(published.append, interval=1.0)
    throttle("load", 1000, 5000)  # first: published
    throttle("load", 2000, 5000)  # 0.1 s later: dropped
    throttle("other", 10, None)  # another node: published
    throttle("other", 20, None)  # dropped
    throttle("other", 30, None)  # 1.7 s later: published
    throttle("load", 5000, 5000)  # final: published
    assert published == [
        {"node": "load", "done": 1000, "total": 5000},
        {"node": "other", "done": 10, "total": None},
        {"node": "other", "done": 30, "total": None},
        {"node": "load", "done": 5000, "total": 5000},
    ]


def test_progress_never_fails_the_run() -> None:
    calls = []

    def broken(meta: dict[str, Any]) -> None:
        calls.append(meta)
        raise ConnectionError("redis is down")

    assert ProgressThrottle(broken, interval=0)("load", 1, 2) is None  # logged, not raised
    assert calls == [{"node": "load", "done": 1, "total": 2}]


# ------------------------------------------------------------------------- submit validation


def test_unserializable_workflow_is_refused_before_any_row() -> None:
    rows = ({"name": f"c{i}", "email": f"c{i}@x.io"} for i in range(3))
    with pytest.raises(WorkflowValidationError, match="only lists can be serialized"):
        CeleryRuntime().submit(build([("CustomerBulkCreateNode", "load", {"data": rows})]))
    assert not WorkflowRun.objects.exists()


def test_unserializable_input_is_refused_before_any_row() -> None:
    with pytest.raises(WorkflowValidationError, match=r"inputs\.qty is a object"):
        CeleryRuntime().submit(create_workflow(), inputs={"qty": object()})
    with pytest.raises(WorkflowValidationError, match="qty"):
        CeleryRuntime().submit(create_workflow(), inputs={})
    assert not WorkflowRun.objects.exists()


def test_decimal_and_date_inputs_travel_as_text(django_capture_on_commit_callbacks: Any) -> None:
    import datetime as dt
    from decimal import Decimal

    workflow = build([("ProductCreateNode", "p", {"name": "{{when}}", "sku": "D-1", "price": "{{price}}"})])
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(
            workflow, inputs={"price": Decimal("2.50"), "when": dt.date(2026, 1, 2)}
        )
    assert WorkflowRun.objects.get(pk=handle.run_id).inputs == {"price": "2.50", "when": "2026-01-02"}
    assert handle.wait(timeout=5)["p"]["price"] == "2.50"


def test_user_must_be_saved_and_permitted() -> None:
    with pytest.raises(PermissionDenied, match="saved user"):
        CeleryRuntime().submit(create_workflow(), inputs={"qty": 1}, user=AnonymousUser())
    clerk = User.objects.create_user("clerk")
    with pytest.raises(PermissionDenied, match=r"shop\.add_product"):
        CeleryRuntime().submit(create_workflow(), inputs={"qty": 1}, user=clerk)
    assert not WorkflowRun.objects.exists()


def test_permitted_user_is_recorded(django_capture_on_commit_callbacks: Any) -> None:
    boss = User.objects.create_superuser("boss")
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow(), inputs={"qty": 1}, user=boss)
    handle.wait(timeout=5)
    assert WorkflowRun.objects.get(pk=handle.run_id).user_id == str(boss.pk)


def test_tenant_without_django_tenants_is_refused_before_any_row() -> None:
    with pytest.raises(TenantError):
        CeleryRuntime().submit(create_workflow(), inputs={"qty": 1}, tenant="acme")
    assert not WorkflowRun.objects.exists()


# ------------------------------------------------------------------ choosing eager, routing


def _app(broker: str | None = None, always_eager: bool = False) -> Any:
    from celery import Celery

    app = Celery("probe", set_as_current=False)
    app.conf.update(broker_url=broker, task_always_eager=always_eager)
    return app


def test_eager_when_no_broker_is_configured(settings: Any) -> None:
    pytest.importorskip("celery")
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    assert is_eager(_app()) is True
    assert is_eager(_app("redis://127.0.0.1:6379/5")) is False
    assert is_eager(_app("redis://127.0.0.1:6379/5", always_eager=True)) is True
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": False}
    assert is_eager(_app()) is False
    assert dataflow_celery.is_eager(_app()) is False


def test_without_celery_installed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    monkeypatch.setattr(broker, "celery_installed", lambda: False)
    settings.CELERY_BROKER_URL = ""
    assert is_eager() is True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/5"
    with pytest.raises(ImproperlyConfigured, match=r"django-dataflow\[celery\]"):
        is_eager()
    with pytest.raises(ImproperlyConfigured, match="needs Celery"):
        broker.resolve_app()


def test_celery_app_setting_names_the_app(settings: Any) -> None:
    from tests.celery_support import client_app

    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_APP": "tests.celery_support.client_app"}
    assert broker.resolve_app() is client_app


class _StubTask:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error = error

    def apply_async(self, **options: Any) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(options)


def _stub_app(task: _StubTask) -> Any:
    return SimpleNamespace(
        conf=SimpleNamespace(broker_url="redis://stub", task_always_eager=False),
        tasks={dataflow_celery.TASK_NAME: task},
    )


@pytest.mark.parametrize(("queue", "expected"), [(None, "dataflow"), ("etl", "etl")])
def test_runs_are_routed_to_the_dataflow_queue(
    settings: Any, django_capture_on_commit_callbacks: Any, queue: str | None, expected: str
) -> None:
    pytest.importorskip("celery")
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    task = _StubTask()
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime(queue, app=_stub_app(task)).submit(create_workflow(), inputs={"qty": 1})
        assert task.sent == []  # not before the commit
    kwargs = {"run_id": handle.run_id, "using": "default"}
    assert task.sent == [{"kwargs": kwargs, "task_id": handle.task_id, "queue": expected}]
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.runtime, run.celery_task_id, run.status) == ("celery", handle.task_id, "pending")


def test_a_broker_that_refuses_the_message_fails_the_run(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pytest.importorskip("celery")
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    task = _StubTask(error=ConnectionRefusedError("broker down"))
    with pytest.raises(ConnectionRefusedError), django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime(app=_stub_app(task)).submit(create_workflow(), inputs={"qty": 1})
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert run.status == "failed" and "broker down" in run.error


# ---------------------------------------------------------------------- helpers and settings


def test_celery_helpers() -> None:
    assert dataflow_celery.QUEUE == conf.OPTIONS["CELERY_QUEUE"].default == conf.celery_queue()
    assert dataflow_celery.task_routes() == {"django_dataflow.*": {"queue": "dataflow"}}
    assert dataflow_celery.task_routes("etl") == {"django_dataflow.*": {"queue": "etl"}}
    recommended = dataflow_celery.recommended_settings("redis://r/1", visibility_timeout=600)
    assert recommended["CELERY_BROKER_URL"] == recommended["CELERY_RESULT_BACKEND"] == "redis://r/1"
    assert recommended["CELERY_DB_REUSE_MAX"] > 0
    assert recommended["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1
    assert recommended["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"visibility_timeout": 600}


def test_configure_merges_routes() -> None:
    app = _app()
    app.conf.task_routes = {"shop.*": {"queue": "shop"}}
    dataflow_celery.configure(app)
    assert app.conf.task_routes == {"shop.*": {"queue": "shop"}, "django_dataflow.*": {"queue": "dataflow"}}
    listed = _app()
    listed.conf.task_routes = [{"x.*": {"queue": "x"}}]
    dataflow_celery.configure(listed, queue="etl")
    assert listed.conf.task_routes == [{"django_dataflow.*": {"queue": "etl"}}, {"x.*": {"queue": "x"}}]


def test_the_task_is_registered_under_its_name() -> None:
    pytest.importorskip("celery")
    from django_dataflow import tasks

    task = tasks.run_workflow
    assert task.name == dataflow_celery.TASK_NAME
    assert task.acks_late is True and task.reject_on_worker_lost is True
    assert task.ignore_result is False


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("CELERY_QUEUE", "", "E003"),
        ("CELERY_QUEUE", 5, "E002"),
        ("CELERY_EAGER", "yes", "E002"),
        ("CELERY_APP", 1, "E002"),
        ("CELERY_MAX_RETRIES", -1, "E003"),
        ("CELERY_RETRY_DELAY", 0, "E003"),
        ("CELERY_RETRY_DELAY", True, "E002"),
        ("CELERY_PROGRESS_INTERVAL", -0.5, "E003"),
    ],
)
def test_celery_settings_are_validated(key: str, value: Any, problem: str) -> None:
    problems = conf.find_problems({key: value})
    assert [p.id for p in problems] == [f"django_dataflow.{problem}"]
    assert key in problems[0].message


@pytest.mark.parametrize(
    ("key", "value"),
    [("CELERY_MAX_RETRIES", 0), ("CELERY_EAGER", None), ("CELERY_EAGER", False), ("CELERY_RETRY_DELAY", 0.1),
     ("CELERY_APP", "proj.celery.app"), ("CELERY_PROGRESS_INTERVAL", 2)],
)
def test_valid_celery_settings(key: str, value: Any) -> None:
    assert conf.find_problems({key: value}) == []


def test_public_names() -> None:
    from django_dataflow.runtime.celery import CeleryRuntime as Real
    from django_dataflow.runtime.definitions import run

    assert django_dataflow.CeleryRuntime is Real
    assert django_dataflow.run is run
    assert {"CeleryRuntime", "run"} <= set(django_dataflow.__all__)


@pytest.mark.django_db(transaction=True)
def test_celery_demo_runs_eagerly() -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("shop_celery_demo", stdout=out)
    text = out.getvalue()
    assert "eagerly in this process" in text
    assert "'restock': {'updated': 1}" in text
    assert "WorkflowRun: succeeded, 1 attempt(s), runtime celery-eager" in text
    assert Product.objects.get().stock == 10


def test_testproject_celery_app_is_wired() -> None:
    pytest.importorskip("celery")
    from celery.fixups.django import DjangoWorkerFixup

    import testproject

    app = testproject.celery_app
    assert app.main == "testproject"
    assert app.conf.task_routes == {"django_dataflow.*": {"queue": "dataflow"}}
    assert app.conf.worker_prefetch_multiplier == 1
    # What Celery's Django fix-up reads to stop closing the connection around every task.
    assert DjangoWorkerFixup(app).db_reuse_max == 1000


def test_without_a_result_backend_wait_reads_the_row(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pytest.importorskip("celery")
    from celery.backends.base import DisabledBackend

    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    app = _stub_app(_StubTask())
    app.backend = DisabledBackend(_app())
    with django_capture_on_commit_callbacks(execute=True):
        done = CeleryRuntime(app=app).submit(create_workflow("W-1"), inputs={"qty": 1})
        failed = CeleryRuntime(app=app).submit(create_workflow("W-2"), inputs={"qty": 1})
    assert done.progress() is None
    with pytest.raises(RunTimeout):
        done.wait(timeout=0.05)
    # What a worker would have written:
    WorkflowRun.objects.filter(pk=done.run_id).update(status="succeeded", results={"product": {"id": 7}})
    WorkflowRun.objects.filter(pk=failed.run_id).update(
        status="failed", error_node="order", error_type="RecordNotFound",
        error="node 'order' (OrderCreateNode) failed: no such product",
    )
    assert done.wait(timeout=1) == {"product": {"id": 7}}
    with pytest.raises(RecordNotFound) as caught:
        failed.wait(timeout=1)
    assert (caught.value.node_id, caught.value.node_type, caught.value.message) == (
        "order", "OrderCreateNode", "no such product"
    )
    assert str(caught.value) == "node 'order' (OrderCreateNode) failed: no such product"


def test_wait_with_on_update_polls_the_row_and_the_task_state(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The stub app has no AsyncResult: wait(on_update=...) never blocks on the result backend."""
    pytest.importorskip("celery")
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": None}
    meta: dict[str, Any] = {"status": "PROGRESS", "result": {"node": "product", "done": 1, "total": 2}}
    app = _stub_app(_StubTask())
    app.backend = SimpleNamespace(get_task_meta=lambda task_id: dict(meta))
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime(app=app).submit(create_workflow("U-1"), inputs={"qty": 1})
    WorkflowRun.objects.filter(pk=handle.run_id).update(status="running", attempts=1)
    seen: list[tuple[str, Any]] = []

    def on_update(run: WorkflowRun, progress: dict[str, Any] | None) -> None:
        seen.append((run.status, progress))
        if len(seen) == 1:
            meta["result"] = {"node": "product", "done": 2, "total": 2}
        elif len(seen) == 2:
            meta.clear()
            meta["status"] = "FAILURE"  # the task died outside the run; the row stays running

    with pytest.raises(DataflowError, match="failed outside the run"):
        handle.wait(timeout=10, on_update=on_update)
    assert seen == [
        ("running", {"node": "product", "done": 1, "total": 2}),
        ("running", {"node": "product", "done": 2, "total": 2}),
        ("running", None),
    ]

    # A result backend that cannot be read: no progress, and the row still decides.
    def unreachable(task_id: str) -> dict[str, Any]:
        raise ConnectionError("result backend down")

    app.backend = SimpleNamespace(get_task_meta=unreachable)
    seen.clear()

    def finish(run: WorkflowRun, progress: dict[str, Any] | None) -> None:
        seen.append((run.status, progress))
        rows = WorkflowRun.objects.filter(pk=handle.run_id)
        rows.update(status="succeeded", results={"product": {"id": 7}})

    assert handle.wait(timeout=10, on_update=finish) == {"product": {"id": 7}}
    assert seen == [("running", None), ("succeeded", None)]


def test_wait_on_update_sees_an_eager_run_s_final_row(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_workflow("U-2"), inputs={"qty": 1})
    seen: list[WorkflowRun] = []
    results = handle.wait(on_update=lambda run, progress: seen.append(run))
    assert [run.status for run in seen] == ["succeeded"]
    assert seen[0].results == results and set(seen[0].node_stats) == {"product", "order"}
    with django_capture_on_commit_callbacks(execute=True):
        failing = CeleryRuntime().submit(create_workflow("U-2"), inputs={"qty": 1})  # the sku is taken
    seen.clear()
    with pytest.raises(NodeExecutionError):
        failing.wait(on_update=lambda run, progress: seen.append(run))
    assert [run.status for run in seen] == ["failed"]


# ---------------------------------------------------------------------------------- run table


@pytest.mark.postgres
def test_claim_and_finish_update_the_run_row_in_place(django_capture_on_commit_callbacks: Any) -> None:
    """No index covers a column a run's life changes, so both updates are HOT (no index writes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", [WorkflowRun._meta.db_table]
        )
        indexes = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [WorkflowRun._meta.db_table]
        )
        options = cursor.fetchone()[0]
    for changing in ("status", "started_at", "finished_at", "attempts", "results"):
        assert f"({changing}" not in indexes and f", {changing}" not in indexes
    assert options == ["fillfactor=70"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::regclass::oid", [WorkflowRun._meta.db_table])
        oid = cursor.fetchone()[0]
        with django_capture_on_commit_callbacks(execute=True):
            handle = CeleryRuntime().submit(create_workflow("HOT-1"), inputs={"qty": 1})
        assert handle.status() == "succeeded"
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s), pg_stat_get_xact_tuples_hot_updated(%s)",
            [oid, oid],
        )
        updated, hot = cursor.fetchone()
    assert updated >= 2
    assert hot == updated
