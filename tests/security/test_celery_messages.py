"""Celery messages are not trusted: a task message carries a run id (and the database alias, and for
tenant runs the schema the row is in), never the user; the worker takes the user and tenant from
the WorkflowRun row written by the submitting code, checks that the row names the schema the
message named (tests/tenants/test_worker.py), and checks the user's permissions again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db.utils import ConnectionDoesNotExist

from django_dataflow import CeleryRuntime, PermissionDenied
from django_dataflow.models import WorkflowRun
from shop.models import Product
from tests.conftest import build
from tests.security.conftest import ALL_SHOP, database_state, make_user

pytestmark = pytest.mark.django_db
celery = pytest.importorskip("celery")


@pytest.fixture(autouse=True)
def eager(settings: Any) -> None:
    """CeleryRuntime records runs without a broker; the task is then called like a worker would."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}


def create_lamp() -> Any:
    return build([("ProductCreateNode", "p", {"name": "Lamp", "sku": "F-1", "price": "1"})])


def pending_run(user: Any = None, workflow: Any = None) -> WorkflowRun:
    """A submitted run whose transaction has not committed: recorded, never dispatched."""
    handle = CeleryRuntime().submit(workflow or create_lamp(), user=user)
    return WorkflowRun.objects.get(pk=handle.run_id)


def deliver(**kwargs: Any) -> Any:
    """Run the task body in this process, as a worker receiving this message would."""
    from django_dataflow import tasks

    return tasks.run_workflow.apply(kwargs=kwargs, throw=True).get()


def without_runs(state: dict[str, Any]) -> dict[str, Any]:
    return {table: value for table, value in state.items() if table != "django_dataflow_workflowrun"}


@pytest.mark.parametrize(
    "forged",
    [
        {"user_id": "1"},
        {"user": "root"},
        {"tenant": "acme"},
        {"tenant": "public", "user_id": "1"},
        {"inputs": {"qty": 1}},
        {"workflow": {"nodes": []}},
    ],
)
def test_a_message_carrying_a_user_or_tenant_is_refused(
    seeded: dict[str, Any], forged: dict[str, Any]
) -> None:
    run = pending_run(user=make_user("add_product"))
    before = database_state()
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        deliver(run_id=str(run.run_id), using="default", **forged)
    assert database_state() == before
    assert WorkflowRun.objects.get(pk=run.pk).status == "pending"


@pytest.mark.parametrize("schema", ["acme", "public", 5])
def test_a_message_naming_a_schema_without_django_tenants_runs_nothing(
    seeded: dict[str, Any], schema: Any
) -> None:
    from django_dataflow.exceptions import DataflowError

    run = pending_run(user=make_user("add_product"))
    before = database_state()
    with pytest.raises(DataflowError, match=r"schema|django-tenants"):
        deliver(run_id=str(run.run_id), using="default", schema=schema)
    assert database_state() == before
    assert WorkflowRun.objects.get(pk=run.pk).status == "pending"


def test_a_message_for_an_unknown_run_does_nothing(seeded: dict[str, Any]) -> None:
    before = database_state()
    summary = deliver(run_id=str(uuid.uuid4()), using="default")
    assert summary["state"] == "skipped"
    assert database_state() == before


def test_a_replayed_message_never_runs_a_finished_run_again(
    seeded: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(create_lamp())
    handle.wait()
    before = database_state()
    assert deliver(run_id=handle.run_id, using="default")["state"] == "skipped"
    assert database_state() == before
    assert Product.objects.filter(sku="F-1").count() == 1


@pytest.mark.parametrize(
    ("run_id", "error"),
    [
        ("1 OR 1=1", (ValueError, ValidationError)),
        ("'; DROP TABLE shop_product; --", (ValueError, ValidationError)),
        ("", (ValueError, ValidationError)),
    ],
)
def test_a_malformed_run_id_touches_nothing(seeded: dict[str, Any], run_id: str, error: Any) -> None:
    before = database_state()
    with pytest.raises(error):
        deliver(run_id=run_id, using="default")
    assert database_state() == before


def test_a_forged_database_alias_touches_nothing(seeded: dict[str, Any]) -> None:
    run = pending_run()
    before = database_state()
    with pytest.raises(ConnectionDoesNotExist):
        deliver(run_id=str(run.run_id), using="other; DROP")
    assert database_state() == before


def test_the_worker_checks_the_recorded_users_permissions_again(seeded: dict[str, Any]) -> None:
    user = make_user("add_product")
    run = pending_run(user=user)
    user.user_permissions.clear()  # revoked between the submission and the delivery
    before = database_state()
    with pytest.raises(PermissionDenied, match=r"needs permission 'shop\.add_product'"):
        deliver(run_id=str(run.run_id), using="default")
    assert without_runs(database_state()) == without_runs(before)
    run.refresh_from_db()
    assert (run.status, run.error_type, run.error_node) == ("failed", "PermissionDenied", "p")


def test_a_run_whose_user_was_deleted_is_refused(seeded: dict[str, Any]) -> None:
    user = make_user(*ALL_SHOP)
    run = pending_run(user=user)
    user.delete()
    before = database_state()
    with pytest.raises(PermissionDenied, match="no longer exists"):
        deliver(run_id=str(run.run_id), using="default")
    assert without_runs(database_state()) == without_runs(before)
    run.refresh_from_db()
    assert (run.status, run.error_type) == ("failed", "PermissionDenied")


def test_the_recorded_user_is_the_one_the_worker_runs_as(seeded: dict[str, Any]) -> None:
    # The row names a user with view permission only; nothing in the message can make it the admin.
    limited = make_user("view_product")
    run = pending_run(user=limited, workflow=build([("ProductCountNode", "c", {})]))
    WorkflowRun.objects.filter(pk=run.pk).update(workflow=create_lamp().to_dict())  # a tampered row
    before = database_state()
    with pytest.raises(PermissionDenied, match=r"shop\.add_product"):
        deliver(run_id=str(run.run_id), using="default")
    assert without_runs(database_state()) == without_runs(before)


@pytest.mark.parametrize("field", ["retries", "waits"])
@pytest.mark.parametrize("value", [-1, "3", 2.5, None, True])
def test_a_forged_retry_counter_is_refused_naming_it(seeded: dict[str, Any], field: str, value: Any) -> None:
    from django_dataflow.exceptions import DataflowError

    run = pending_run()
    before = database_state()
    with pytest.raises(DataflowError, match=f"task message field '{field}' must be a non-negative integer"):
        deliver(run_id=str(run.run_id), using="default", **{field: value})
    assert database_state() == before
    assert WorkflowRun.objects.get(pk=run.pk).status == "pending"


@pytest.mark.parametrize("user_id", ["not-a-pk", "1.5", "x" * 300])
def test_a_run_row_naming_a_malformed_user_is_refused(seeded: dict[str, Any], user_id: str) -> None:
    run = pending_run(user=make_user(*ALL_SHOP))
    WorkflowRun.objects.filter(pk=run.pk).update(user_id=user_id[:64])
    before = database_state()
    with pytest.raises(PermissionDenied, match="no longer exists"):
        deliver(run_id=str(run.run_id), using="default")
    assert without_runs(database_state()) == without_runs(before)
    assert WorkflowRun.objects.get(pk=run.pk).status == "failed"


def test_waiting_on_a_refused_run_tells_a_refusal_from_a_failure(
    seeded: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from django_dataflow.exceptions import NodeExecutionError

    user = make_user("view_product")
    with django_capture_on_commit_callbacks(execute=True):
        handle = CeleryRuntime().submit(build([("ProductCountNode", "c", {})]), user=user)
        WorkflowRun.objects.filter(pk=handle.run_id).update(workflow=create_lamp().to_dict())
    with pytest.raises(NodeExecutionError) as caught:
        handle.wait(timeout=10)
    assert caught.value.node_id == "p"
    assert isinstance(caught.value.__cause__, PermissionDenied)
    assert "shop.add_product" in str(caught.value.__cause__)
