"""Triggers in process (CeleryRuntime eager): model-change triggers, chained runs, schedules' rows.

The same behaviour against real worker and beat processes is in tests/test_triggers_worker.py.
transaction=True: triggers wait for real commits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import django_dataflow
from django_dataflow import LocalRuntime, WorkflowValidationError
from django_dataflow.checks import check_trigger_definitions
from django_dataflow.models import DefinitionSchedule, WorkflowDefinition, WorkflowRun
from django_dataflow.tenancy import TenantError
from django_dataflow.triggers import schedules
from django_dataflow.triggers.model_events import ModelTrigger
from shop.models import Customer, Product
from tests.conftest import build

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def eager(settings: Any) -> None:
    """CeleryRuntime runs in this process."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "CELERY_RETRY_DELAY": 0.01}


@pytest.fixture
def triggers() -> Iterator[list[ModelTrigger]]:
    """Registered for the test, removed after it."""
    made: list[ModelTrigger] = []
    yield made
    for trigger in made:
        trigger.disconnect()


def define(name: str, nodes: list[tuple], **fields: Any) -> WorkflowDefinition:
    """A saved definition."""
    return WorkflowDefinition.objects.create(name=name, workflow=build(nodes).to_dict(), **fields)


def welcome() -> WorkflowDefinition:
    """Marks the customer that started it (a write to the very row: the loop guard's case)."""
    mark = ("CustomerUpdateNode", "mark", {"id": "{{pk}}", "fields": {"tier": "welcomed"}})
    return define("welcome", [mark])


def audit() -> WorkflowDefinition:
    """Reads only: its runs' inputs are what the tests look at."""
    return define("audit", [("ProductCountNode", "count", {})])


def runs(definition: str) -> list[WorkflowRun]:
    """The definition's runs, oldest first."""
    return list(WorkflowRun.objects.filter(definition=definition).order_by("created_at"))


# ------------------------------------------------------------------------ model-change triggers


def test_created_trigger_fires_once_after_commit_with_the_pk(triggers: list[ModelTrigger]) -> None:
    welcome()
    triggers.append(django_dataflow.on_commit_of(
        Customer, "created", definition="welcome", inputs=lambda c: {"email": c.email}
    ))
    with transaction.atomic():
        customer = Customer.objects.create(name="Ada", email="ada@example.com")
        assert runs("welcome") == []  # nothing before the commit
    [run] = runs("welcome")
    assert run.status == "succeeded"
    assert run.inputs == {
        "model": "shop.Customer", "event": "created", "pk": customer.pk, "email": "ada@example.com"
    }
    assert run.trigger == {
        "kind": "model", "model": "shop.Customer", "event": "created", "pks": [customer.pk]
    }
    assert run.runtime == "celery-eager"
    customer.refresh_from_db()
    assert customer.tier == "welcomed"


def test_a_rolled_back_change_fires_nothing(triggers: list[ModelTrigger]) -> None:
    welcome()
    triggers.append(django_dataflow.on_commit_of(Customer, "created", definition="welcome"))
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.create(name="Ada", email="ada@example.com")
        raise RuntimeError("roll back")
    assert runs("welcome") == []
    assert not Customer.objects.exists()


def test_updated_and_deleted_events(triggers: list[ModelTrigger]) -> None:
    audit()
    triggers.append(django_dataflow.on_commit_of(Customer, "updated", definition="audit"))
    triggers.append(django_dataflow.on_commit_of(Customer, "deleted", definition="audit",
                                                 inputs=lambda c: {"email": c.email}))
    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs("audit") == []  # "created" has no trigger
    customer.name = "Ada L."
    customer.save()
    pk = customer.pk
    customer.delete()
    updated, deleted = runs("audit")
    assert (updated.inputs["event"], updated.inputs["pk"]) == ("updated", pk)
    assert deleted.inputs == {
        "model": "shop.Customer", "event": "deleted", "pk": pk, "email": "ada@example.com"
    }


def test_a_run_does_not_retrigger_its_definition_on_the_row_that_started_it(
    triggers: list[ModelTrigger],
) -> None:
    welcome()
    triggers.append(django_dataflow.on_commit_of(Customer, "created", definition="welcome"))
    triggers.append(django_dataflow.on_commit_of(Customer, "updated", definition="welcome"))
    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    [first] = runs("welcome")  # its update of the same customer started nothing
    assert first.status == "succeeded"
    customer.refresh_from_db()
    customer.name = "Ada L."
    customer.save()  # a change from outside any run does fire
    assert [r.inputs["event"] for r in runs("welcome")] == ["created", "updated"]


def test_a_run_writing_other_rows_of_its_own_trigger_is_bounded_by_the_chain_depth(
    settings: Any, triggers: list[ModelTrigger],
) -> None:
    # Each run creates another customer, which triggers the same definition: not the same row,
    # so the loop guard lets it through, and MAX_CHAIN_DEPTH ends it.
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_CHAIN_DEPTH": 2}
    define("spawn", [("CustomerCreateNode", "next", {"name": "n", "email": "{{pk}}@next.example"})])
    triggers.append(django_dataflow.on_commit_of(Customer, "created", definition="spawn"))
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert [r.chain_depth for r in runs("spawn")] == [0, 1, 2]
    assert Customer.objects.count() == 4  # Ada and one customer per run; the fourth run was refused


def test_bulk_nodes_fire_once_per_operation_with_the_pks(triggers: list[ModelTrigger]) -> None:
    audit()
    for event in ("created", "updated", "deleted"):
        triggers.append(django_dataflow.on_commit_of(Product, event, definition="audit"))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "1.00"} for i in range(3)]
    LocalRuntime().execute(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    pks = sorted(Product.objects.values_list("pk", flat=True))
    [created] = runs("audit")
    assert created.inputs == {"model": "shop.Product", "event": "created", "pks": pks}
    everything = {"filter": {}, "all": True, "fields": {"stock": 4}}
    LocalRuntime().execute(build([("ProductBulkUpdateNode", "up", everything)]))
    LocalRuntime().execute(build([
        ("ProductBulkUpdateNode", "rows", {"data": [{"id": pk, "stock": 9} for pk in pks[:2]]})
    ]))
    LocalRuntime().execute(build([("ProductBulkDeleteNode", "one", {"ids": [pks[0]]})]))
    LocalRuntime().execute(build([("ProductBulkDeleteNode", "rest", {"filter": {"stock": {"$gte": 0}}})]))
    events = [(r.inputs["event"], sorted(r.inputs["pks"])) for r in runs("audit")]
    assert events == [
        ("created", pks), ("updated", pks), ("updated", pks[:2]), ("deleted", pks[:1]), ("deleted", pks[1:]),
    ]


def test_per_row_triggers_fire_once_per_row_of_a_bulk_operation(triggers: list[ModelTrigger]) -> None:
    audit()
    triggers.append(django_dataflow.on_commit_of(Product, "created", definition="audit", per_row=True))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "1.00"} for i in range(3)]
    LocalRuntime().execute(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    pks = sorted(Product.objects.values_list("pk", flat=True))
    assert sorted(r.inputs["pk"] for r in runs("audit")) == pks


def upsert(rows: list[dict[str, Any]], **params: Any) -> dict[str, int]:
    """Run a ProductBulkUpsertNode on sku; its result."""
    node = ("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"], **params})
    return LocalRuntime().execute(build([node]))[0]["up"]


def products(*skus: str) -> list[Product]:
    """Products by sku, created before any trigger is registered."""
    return [Product.objects.create(name=sku, sku=sku, price="1.00") for sku in skus]


def pks_of(*skus: str) -> list[int]:
    """The products' primary keys, sorted."""
    return sorted(Product.objects.filter(sku__in=skus).values_list("pk", flat=True))


def fired(definition: str) -> dict[str, list[Any]]:
    """event -> sorted pks of the definition's bulk runs (each event at most once)."""
    found: dict[str, list[Any]] = {}
    for run in runs(definition):
        assert run.inputs["event"] not in found, "one submission per event"
        found[run.inputs["event"]] = sorted(run.inputs["pks"])
    return found


def watch_upserts(triggers: list[ModelTrigger], *events: str, per_row: bool = False) -> None:
    """Register 'audit' triggers on Product for these events (removed by the fixture)."""
    for event in events:
        triggers.append(django_dataflow.on_commit_of(Product, event, definition="audit", per_row=per_row))


def sku_rows(count: int) -> list[dict[str, Any]]:
    """Rows for products S-0 .. S-(count-1)."""
    return [{"name": f"P{i}", "sku": f"S-{i}", "price": "2.00"} for i in range(count)]


# Which statement the upsert used: one returning primary keys (a trigger watches) or counts only.
KEYED = re.compile(r'RETURNING "id"|SELECT "id" FROM "shop_product"')


# {}: COPY on PostgreSQL, UpsertWriter on SQLite; validate: UpsertWriter on both; batch_size=1:
# one statement per row, the keys of all of them in one submission.
@pytest.mark.parametrize("params", [{}, {"validate": True}, {"batch_size": 1, "validate": True}])
def test_bulk_upsert_fires_created_with_inserted_and_updated_with_existing_pks(
    triggers: list[ModelTrigger], params: dict[str, Any],
) -> None:
    audit()
    products("S-0", "S-1")
    watch_upserts(triggers, "created", "updated")
    assert upsert(sku_rows(4), **params) == {"created": 2, "updated": 2}
    assert fired("audit") == {"created": pks_of("S-2", "S-3"), "updated": pks_of("S-0", "S-1")}
    assert all(r.inputs["model"] == "shop.Product" for r in runs("audit"))


def test_bulk_upsert_fires_only_the_watched_event(triggers: list[ModelTrigger]) -> None:
    audit()
    products("S-0")
    watch_upserts(triggers, "updated")
    assert upsert(sku_rows(3)) == {"created": 2, "updated": 1}
    assert fired("audit") == {"updated": pks_of("S-0")}


def test_bulk_upsert_per_row_triggers_fire_once_per_row(triggers: list[ModelTrigger]) -> None:
    audit()
    products("S-0")
    watch_upserts(triggers, "created", "updated", per_row=True)
    assert upsert(sku_rows(3)) == {"created": 2, "updated": 1}
    per_row = sorted((r.inputs["event"], r.inputs["pk"]) for r in runs("audit"))
    assert per_row == sorted(
        [("created", pk) for pk in pks_of("S-1", "S-2")] + [("updated", pk) for pk in pks_of("S-0")]
    )


@pytest.mark.parametrize("params", [{}, {"validate": True}])
def test_an_insert_only_upsert_fires_created_for_the_inserted_rows_only(
    triggers: list[ModelTrigger], params: dict[str, Any],
) -> None:
    audit()
    products("S-0", "S-1")
    watch_upserts(triggers, "created", "updated")
    result = upsert(sku_rows(3), update_fields=[], **params)
    assert result == {"created": 1, "updated": 0, "unchanged": 2}
    assert fired("audit") == {"created": pks_of("S-2")}
    assert Product.objects.get(sku="S-0").price == Decimal("1.00")  # left as it was


def test_an_upsert_without_a_watching_trigger_returns_no_keys(triggers: list[ModelTrigger]) -> None:
    audit()
    products("S-0")
    # A trigger for another event: the upsert's events stay unwatched.
    triggers.append(django_dataflow.on_commit_of(Product, "deleted", definition="audit"))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "2.00"} for i in range(3)]
    with CaptureQueriesContext(connection) as unwatched:
        assert upsert(rows) == {"created": 2, "updated": 1}
    assert not [q["sql"] for q in unwatched.captured_queries if KEYED.search(q["sql"])]
    assert runs("audit") == []
    triggers.append(django_dataflow.on_commit_of(Product, "updated", definition="audit"))
    with CaptureQueriesContext(connection) as watched:
        assert upsert(rows) == {"created": 0, "updated": 3}
    assert [q["sql"] for q in watched.captured_queries if KEYED.search(q["sql"])]  # the marker works
    assert fired("audit") == {"updated": pks_of("S-0", "S-1", "S-2")}


def test_a_rolled_back_upsert_fires_nothing(triggers: list[ModelTrigger]) -> None:
    audit()
    products("S-0", "Taken")
    for event in ("created", "updated"):
        triggers.append(django_dataflow.on_commit_of(Product, event, definition="audit"))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "2.00"} for i in range(3)]
    workflow = build([
        ("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]}),
        ("ProductCreateNode", "late", {"name": "B", "sku": "Taken", "price": "1.00"}),  # fails
    ])
    with pytest.raises(django_dataflow.NodeExecutionError) as caught:
        LocalRuntime().execute(workflow)
    assert caught.value.node_id == "late"
    assert runs("audit") == []
    assert sorted(Product.objects.values_list("sku", "price")) == [
        ("S-0", Decimal("1.00")), ("Taken", Decimal("1.00"))
    ]


@pytest.mark.parametrize("params", [{}, {"validate": True}])
def test_an_upsert_run_does_not_retrigger_its_definition_on_the_rows_that_started_it(
    triggers: list[ModelTrigger], params: dict[str, Any],
) -> None:
    again = [{"name": n, "sku": n, "price": "7.00"} for n in ("S-0", "S-1")]
    define("restock", [("ProductBulkUpsertNode", "up", {"data": again, "conflict_on": ["sku"], **params})])
    audit()
    products("S-0", "S-1")
    triggers.append(django_dataflow.on_commit_of(Product, "updated", definition="restock"))
    triggers.append(django_dataflow.on_commit_of(Product, "updated", definition="audit"))
    rows = [{"name": n, "sku": n, "price": "2.00"} for n in ("S-0", "S-1")]
    assert upsert(rows) == {"created": 0, "updated": 2}
    [restock] = runs("restock")  # its own update of S-0 and S-1 did not start it again
    assert restock.status == "succeeded" and sorted(restock.inputs["pks"]) == pks_of("S-0", "S-1")
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("7.00")}
    # The guard is per definition: "audit" saw both upserts, the test's and the run's.
    assert [sorted(r.inputs["pks"]) for r in runs("audit")] == [pks_of("S-0", "S-1")] * 2


def test_a_failed_workflow_fires_nothing(triggers: list[ModelTrigger]) -> None:
    audit()
    triggers.append(django_dataflow.on_commit_of(Product, "created", definition="audit"))
    workflow = build([
        ("ProductCreateNode", "a", {"name": "A", "sku": "S-1", "price": "1.00"}),
        ("ProductCreateNode", "b", {"name": "B", "sku": "S-1", "price": "1.00"}),  # duplicate sku
    ])
    with pytest.raises(django_dataflow.NodeExecutionError):
        LocalRuntime().execute(workflow)
    assert runs("audit") == []


def test_on_commit_of_refuses_bad_arguments_naming_them() -> None:
    with pytest.raises(WorkflowValidationError, match=r"unknown event 'saved'.*created, deleted, updated"):
        django_dataflow.on_commit_of(Customer, "saved", definition="welcome")
    with pytest.raises(WorkflowValidationError, match=r"needs a model class, not 'shop\.Customer'"):
        django_dataflow.on_commit_of("shop.Customer", "created", definition="welcome")  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError, match="definition must be a workflow definition name"):
        django_dataflow.on_commit_of(Customer, "created", definition="no spaces")
    with pytest.raises(WorkflowValidationError, match="inputs must be a function"):
        django_dataflow.on_commit_of(Customer, "created", definition="welcome", inputs={"a": 1})  # type: ignore[arg-type]


def test_an_unknown_definition_is_logged_by_name_and_the_write_stands(
    triggers: list[ModelTrigger], caplog: pytest.LogCaptureFixture,
) -> None:
    triggers.append(django_dataflow.on_commit_of(Customer, "created", definition="nowhere"))
    with caplog.at_level(logging.ERROR, logger="django_dataflow.triggers"):
        Customer.objects.create(name="Ada", email="ada@example.com")
    assert Customer.objects.count() == 1
    assert "no workflow definition named 'nowhere'" in caplog.text
    assert not WorkflowRun.objects.exists()
    [warning] = check_trigger_definitions()
    assert warning.id == "django_dataflow.W070" and "'nowhere'" in warning.msg


def test_a_disabled_definition_is_not_triggered(triggers: list[ModelTrigger], caplog: Any) -> None:
    define("welcome", [("CustomerCountNode", "n", {})], enabled=False)
    triggers.append(django_dataflow.on_commit_of(Customer, "created", definition="welcome"))
    with caplog.at_level(logging.ERROR, logger="django_dataflow.triggers"):
        Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs("welcome") == [] and "'welcome' is disabled" in caplog.text


# ------------------------------------------------------------------------------------- chains


def chain_definitions() -> None:
    define("first", [("ProductCreateNode", "create", {"name": "Lamp", "sku": "{{sku}}", "price": "2.50"})],
           on_success=["second"], on_failure=["cleanup"])
    define("second", [("ProductCountNode", "count", {})])
    define("cleanup", [("ProductCountNode", "count", {})])


def test_a_follow_up_receives_the_finished_runs_results() -> None:
    chain_definitions()
    handle = django_dataflow.run("first", {"sku": "L-1"}, async_=True)
    [second] = runs("second")
    assert second.status == "succeeded"
    assert second.inputs["run_id"] == handle.run_id
    assert second.inputs["status"] == "succeeded" and second.inputs["definition"] == "first"
    assert second.inputs["results"]["create"]["sku"] == "L-1"
    assert (str(second.parent_run_id), second.chain_depth) == (handle.run_id, 1)
    assert second.trigger == {"kind": "chain", "on": "succeeded", "definition": "first"}
    first = WorkflowRun.objects.get(pk=handle.run_id)
    assert first.follow_ups == [{"definition": "second", "run_id": str(second.run_id)}]
    assert runs("cleanup") == []


def test_a_failing_run_fires_only_its_on_failure_follow_ups() -> None:
    chain_definitions()
    Product.objects.create(name="Taken", sku="L-1", price="1.00")
    handle = django_dataflow.run("first", {"sku": "L-1"}, async_=True)
    with pytest.raises(django_dataflow.NodeExecutionError):
        handle.wait(10)
    assert runs("second") == []
    [cleanup] = runs("cleanup")
    assert cleanup.inputs["status"] == "failed" and cleanup.inputs["error_node"] == "create"
    assert "sku" in cleanup.inputs["error"] and cleanup.inputs["results"] is None
    assert cleanup.status == "succeeded"


def test_chains_stop_at_the_maximum_depth_and_say_so(settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_CHAIN_DEPTH": 2}
    define("again", [("ProductCountNode", "count", {})], on_success=["again"])
    django_dataflow.run("again", async_=True)
    chain = runs("again")
    assert [r.chain_depth for r in chain] == [0, 1, 2]
    [refused] = chain[-1].follow_ups
    assert "MAX_CHAIN_DEPTH" in refused["refused"] and refused["definition"] == "again"


def test_follow_up_lists_are_validated_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="on_success must be a list of workflow definition names"):
        define("bad", [("ProductCountNode", "count", {})], on_success="second")
    with pytest.raises(ValidationError, match="on_failure"):
        define("bad", [("ProductCountNode", "count", {})], on_failure=["not a slug"])


# ---------------------------------------------------------------------------------- schedules


def periodic_tasks() -> Any:
    """django-celery-beat's PeriodicTask rows (imported late: the package is an optional extra)."""
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects


def nightly(**fields: Any) -> DefinitionSchedule:
    """A definition with one schedule."""
    definition = WorkflowDefinition.objects.filter(name="nightly").first() or define(
        "nightly", [("ProductCreateNode", "create", {"name": "N", "sku": "{{sku}}", "price": "1.00"})]
    )
    return DefinitionSchedule.objects.create(definition=definition, **fields)


@pytest.mark.schedules
def test_a_schedule_is_a_periodic_task_kept_in_sync() -> None:
    schedule = nightly(crontab="30 3 * * 1-5", inputs={"sku": "N-1"})
    task = periodic_tasks().get(name=schedule.task_name)
    assert task.task == "django_dataflow.fire_schedule" and task.enabled and task.interval is None
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30", "3", "*", "*", "1-5"
    )
    assert json.loads(task.kwargs)["schedule_id"] == schedule.pk
    assert json.loads(task.kwargs)["inputs"] == {"sku": "N-1"}
    assert task.queue == "dataflow"
    schedule.crontab, schedule.interval_seconds = "", 90
    schedule.save()
    task.refresh_from_db()
    assert task.crontab is None and task.interval.every == 90
    schedule.enabled = False
    schedule.save()
    task.refresh_from_db()
    assert not task.enabled
    schedule.enabled = True
    schedule.save()
    definition = schedule.definition
    definition.enabled = False
    definition.save()
    task.refresh_from_db()
    assert not task.enabled  # disabling the definition disables its schedules
    schedule.delete()
    assert not periodic_tasks().filter(name=schedule.task_name).exists()
    other = nightly(interval_seconds=60)
    definition.delete()
    assert not periodic_tasks().filter(name=other.task_name).exists()


@pytest.mark.schedules
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"crontab": "61 * * * *"}, "crontab '61 \\* \\* \\* \\*' is invalid"),
        ({"crontab": "* * *"}, "must have 5 fields"),
        ({}, "give either a crontab or interval_seconds"),
        ({"crontab": "* * * * *", "interval_seconds": 5}, "give either a crontab or interval_seconds"),
        ({"interval_seconds": 0}, "at least 1"),
        ({"crontab": "0 3 * * *", "tenant": "acme", "all_tenants": True}, "a tenant or all_tenants"),
        ({"crontab": "0 3 * * *", "inputs": [1]}, "inputs must be a dict"),
    ],
)
def test_invalid_schedules_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        nightly(**fields)
    assert not DefinitionSchedule.objects.exists() and not periodic_tasks().filter(
        name__startswith="django_dataflow."
    ).exists()


@pytest.mark.schedules
def test_fire_starts_a_run_and_skips_while_one_is_unfinished(caplog: pytest.LogCaptureFixture) -> None:
    schedule = nightly(interval_seconds=60, inputs={"sku": "N-1"})
    [started] = schedules.fire(schedule.pk)
    assert started["state"] == "started"
    run = WorkflowRun.objects.get(pk=started["run_id"])
    assert run.status == "succeeded" and run.trigger == {"kind": "schedule", "schedule": schedule.pk}
    WorkflowRun.objects.filter(pk=run.pk).update(status="running")  # as if still at work
    with caplog.at_level(logging.WARNING, logger="django_dataflow.triggers"):
        [skipped] = schedules.fire(schedule.pk)
    assert skipped == {"state": "skipped", "tenant": None, "running": str(run.pk)}
    assert "fire skipped" in caplog.text and "'nightly'" in caplog.text
    schedule.refresh_from_db()
    assert (schedule.skipped_fires, str(schedule.last_run_id)) == (1, str(run.pk))
    assert schedule.last_skipped_at is not None
    schedule.overlap = "allow"
    schedule.inputs = {"sku": "N-2"}
    schedule.save()
    [allowed] = schedules.fire(schedule.pk)
    assert allowed["state"] == "started"
    assert Product.objects.filter(sku="N-2").exists()


@pytest.mark.schedules
def test_fire_of_a_missing_or_disabled_schedule_does_nothing() -> None:
    assert schedules.fire(999) == [{"state": "missing", "schedule": 999}]
    schedule = nightly(interval_seconds=60, inputs={"sku": "N-1"}, enabled=False)
    assert schedules.fire(schedule.pk) == [{"state": "disabled", "schedule": schedule.pk}]
    assert not WorkflowRun.objects.exists()


@pytest.mark.schedules
def test_all_tenants_without_django_tenants_is_a_clear_error() -> None:
    schedule = nightly(interval_seconds=60, all_tenants=True)
    with pytest.raises(TenantError, match="all tenants, but django-tenants is not installed"):
        schedules.fire(schedule.pk)


@pytest.mark.schedules
def test_next_run_of_a_crontab_schedule() -> None:
    schedule = nightly(crontab="0 3 * * *")
    periodic_tasks().filter(name=schedule.task_name).update(
        last_run_at=dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)
    )
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert schedules.next_run(schedule, now) == dt.datetime(2026, 1, 2, 3, 0, tzinfo=dt.UTC)


@pytest.mark.schedules
def test_the_command_lists_and_syncs(capsys: pytest.CaptureFixture[str]) -> None:
    kept = nightly(crontab="0 3 * * *")
    periodic_tasks().filter(name=kept.task_name).delete()  # lost, e.g. edited away in beat's admin
    periodic_tasks().create(name="django_dataflow.schedule.999", task="x", interval=kept_interval())
    call_command("dataflow_schedules", "--sync")
    out = capsys.readouterr().out
    assert "synced 1 schedule(s); removed 1 stale periodic task(s)" in out
    assert "nightly" in out and "cron 0 3 * * *" in out and "next=20" in out and "1 schedule(s)" in out
    owned = periodic_tasks().filter(name__startswith="django_dataflow.")
    assert list(owned.values_list("name", flat=True)) == [kept.task_name]


def kept_interval() -> Any:
    from django_celery_beat.models import IntervalSchedule

    return IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)


def test_the_command_fails_with_exit_code_1_without_django_celery_beat(monkeypatch: Any) -> None:
    monkeypatch.setattr(schedules, "beat_installed", lambda: False)
    with pytest.raises(CommandError, match="django-celery-beat") as caught:
        call_command("dataflow_schedules", "--sync")
    assert caught.value.returncode == 1


def test_a_schedule_needs_django_celery_beat(monkeypatch: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setattr(schedules, "beat_installed", lambda: False)
    with pytest.raises(ImproperlyConfigured, match=r"django-dataflow\[schedules\].*django_celery_beat"):
        nightly(crontab="0 3 * * *")
    assert not DefinitionSchedule.objects.exists()


def test_a_bulk_operation_too_large_for_the_inputs_bound_is_refused_and_logged(
    settings: Any, triggers: list[ModelTrigger], caplog: pytest.LogCaptureFixture,
) -> None:
    audit()
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_PARAMS_BYTES": 200}
    triggers.append(django_dataflow.on_commit_of(Product, "created", definition="audit"))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "1.00"} for i in range(60)]
    with caplog.at_level(logging.ERROR, logger="django_dataflow.triggers"):
        LocalRuntime().execute(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    assert Product.objects.count() == 60  # the load stands
    assert runs("audit") == []
    assert "trigger audit of shop.Product created: not started" in caplog.text


def test_an_unknown_follow_up_is_refused_by_name_and_the_run_stands() -> None:
    define("lonely", [("ProductCountNode", "count", {})], on_success=["missing"])
    handle = django_dataflow.run("lonely", async_=True)
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert run.status == "succeeded"
    [refused] = run.follow_ups
    assert refused["definition"] == "missing"
    assert "no workflow definition named 'missing'" in refused["refused"]
    [warning] = check_trigger_definitions()
    assert "definition 'lonely' on_success names workflow definition 'missing'" in warning.msg


def test_a_refused_bulk_load_with_a_trigger_names_the_field_and_fires_nothing(
    triggers: list[ModelTrigger],
) -> None:
    audit()
    Product.objects.create(name="Taken", sku="S-1", price="1.00")
    triggers.append(django_dataflow.on_commit_of(Product, "created", definition="audit"))
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "1.00"} for i in range(3)]
    with pytest.raises(django_dataflow.NodeExecutionError, match="sku") as caught:
        LocalRuntime().execute(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    assert caught.value.node_id == "load"
    assert Product.objects.count() == 1
    assert runs("audit") == []
