"""Stored model-change triggers (ModelTriggerRule rows): validation, firing through the same
machinery as on_commit_of(), and how a process learns about rows changed elsewhere.

transaction=True: triggers wait for real commits. CeleryRuntime runs eagerly in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete, post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext

import django_dataflow
from django_dataflow import LocalRuntime
from django_dataflow.models import ModelTriggerRule, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers import stored
from django_dataflow.triggers.model_events import bulk_writes, triggers_for
from shop.models import Customer, Product, Shipment
from tests.conftest import build, db_state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def eager(settings: Any) -> Iterator[None]:
    """CeleryRuntime runs in this process; the loaded rows are forgotten after each test (the
    flush between tests sends no signals)."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "CELERY_RETRY_DELAY": 0.01}
    stored.reset()
    yield
    stored.reset()


def define(name: str, nodes: list[tuple]) -> WorkflowDefinition:
    """A saved definition."""
    return WorkflowDefinition.objects.create(name=name, workflow=build(nodes).to_dict())


def audit() -> WorkflowDefinition:
    """Reads only: its runs' inputs are what the tests look at."""
    return define("audit", [("ProductCountNode", "count", {})])


def runs(definition: str = "audit") -> list[WorkflowRun]:
    """The definition's runs, oldest first."""
    return list(WorkflowRun.objects.filter(definition=definition).order_by("created_at"))


def rule(definition: WorkflowDefinition, model: str = "shop.Customer", event: str = "created",
         **fields: Any) -> ModelTriggerRule:
    """A saved row."""
    return ModelTriggerRule.objects.create(model=model, event=event, definition=definition, **fields)


def receivers_of(model: Any) -> tuple[bool, bool]:
    """Whether post_save and post_delete have receivers for the model."""
    return post_save.has_listeners(model), post_delete.has_listeners(model)


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("fields", "field", "expected"), [
    ({"model": "shop.Nope"}, "model", "'shop.Nope' is not an installed model"),
    ({"model": "Customer"}, "model", "'Customer' is not an installed model"),
    ({"model": "auth.Group"}, "model", "'auth.Group' is not registered with django_dataflow"),
    ({"event": "saved"}, "event", "unknown event 'saved'; valid events: created, deleted, updated"),
    ({"inputs": {"pk": 1, "note": "x"}}, "inputs", "inputs may not set 'pk'"),
    ({"inputs": {"event": "x", "pks": []}}, "inputs", "inputs may not set 'event', 'pks'"),
    ({"inputs": [1]}, "inputs", "inputs must be a dict, not list"),
])
def test_invalid_rows_are_refused_naming_the_field(fields: dict[str, Any], field: str, expected: str) -> None:
    definition = audit()
    before = db_state()
    row = ModelTriggerRule(**{"model": "shop.Customer", "event": "created", "definition": definition,
                              **fields})
    with pytest.raises(ValidationError) as info:
        row.save()
    assert set(info.value.message_dict) == {field}
    assert expected in info.value.message_dict[field][0]
    with pytest.raises(ValidationError) as cleaned:
        row.full_clean()
    assert any(expected in message for message in cleaned.value.message_dict[field])
    assert db_state() == before


def test_an_unregistered_model_error_lists_the_registered_ones() -> None:
    row = ModelTriggerRule(model="auth.Group", event="created", definition=audit())
    with pytest.raises(ValidationError) as info:
        row.save()
    assert "shop.Customer" in info.value.message_dict["model"][0]


def test_an_unknown_definition_is_refused_naming_it() -> None:
    before = db_state()
    with pytest.raises(ValidationError) as info:
        ModelTriggerRule(model="shop.Customer", event="created", definition_id=9999).save()
    assert info.value.message_dict == {"definition": ["workflow definition 9999 does not exist"]}
    with pytest.raises(ValidationError) as missing:
        ModelTriggerRule(model="shop.Customer", event="created").save()
    assert missing.value.message_dict == {"definition": ["a workflow definition is required"]}
    assert db_state() == before


def test_the_label_is_stored_as_django_spells_it() -> None:
    saved = rule(audit(), model="shop.customer")
    assert ModelTriggerRule.objects.get(pk=saved.pk).model == "shop.Customer"
    assert str(saved) == "shop.Customer created -> audit"


# ---------------------------------------------------------------------------------- firing


def test_a_stored_row_fires_once_after_commit_with_its_static_inputs() -> None:
    saved = rule(audit(), inputs={"source": "admin", "priority": 2})
    with transaction.atomic():
        customer = Customer.objects.create(name="Ada", email="ada@example.com")
        assert runs() == []  # nothing before the commit
    [run] = runs()
    assert run.status == "succeeded"
    assert run.inputs == {
        "model": "shop.Customer", "event": "created", "pk": customer.pk, "source": "admin", "priority": 2,
    }
    assert run.trigger == {
        "kind": "model", "model": "shop.Customer", "event": "created", "pks": [customer.pk], "rule": saved.pk,
    }


def test_a_rolled_back_change_fires_nothing() -> None:
    rule(audit())
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.create(name="Ada", email="ada@example.com")
        raise RuntimeError("roll back")
    assert runs() == []


def test_a_row_saved_in_a_rolled_back_transaction_never_fires() -> None:
    definition = audit()
    with pytest.raises(RuntimeError), transaction.atomic():
        rule(definition)
        raise RuntimeError("roll back")
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs() == [] and triggers_for(Customer, "created") == []


def test_stored_rows_are_in_the_same_registry_as_code_triggers() -> None:
    saved = rule(audit(), event="updated", per_row=True)
    code = django_dataflow.on_commit_of(Customer, "updated", definition="audit")
    try:
        found = triggers_for(Customer, "updated")
        expected = sorted([(str(saved.pk), True), ("None", False)])
        assert sorted((str(t.rule), t.per_row) for t in found) == expected
        customer = Customer.objects.create(name="Ada", email="ada@example.com")
        customer.name = "Ada L."
        customer.save()
        assert sorted(str(r.trigger.get("rule")) for r in runs()) == sorted([str(None), str(saved.pk)])
    finally:
        code.disconnect()


def test_bulk_nodes_fire_once_per_operation_and_per_row_rows_once_per_row() -> None:
    definition = audit()
    rule(definition, model="shop.Product", inputs={"batch": "nightly"})
    rule(definition, model="shop.Product", per_row=True)
    collector = bulk_writes(Product, "created")
    assert collector is not None and len(collector.triggers) == 2  # what the bulk nodes see
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "1.00"} for i in range(3)]
    LocalRuntime().execute(build([("ProductBulkCreateNode", "load", {"data": rows})]))
    pks = sorted(Product.objects.values_list("pk", flat=True))
    once = [r.inputs for r in runs() if "pks" in r.inputs]
    assert once == [{"model": "shop.Product", "event": "created", "pks": pks, "batch": "nightly"}]
    assert sorted(r.inputs["pk"] for r in runs() if "pk" in r.inputs) == pks


def test_bulk_upsert_fires_stored_rows_split_by_event() -> None:
    definition = audit()
    Product.objects.create(name="Old", sku="S-0", price="1.00")
    rule(definition, model="shop.Product", event="created", inputs={"side": "new"})
    rule(definition, model="shop.Product", event="updated", inputs={"side": "old"})
    rows = [{"name": f"P{i}", "sku": f"S-{i}", "price": "2.00"} for i in range(3)]
    node = ("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})
    LocalRuntime().execute(build([node]))
    pks = dict(Product.objects.values_list("sku", "pk"))
    fired = sorted((r.inputs["event"], r.inputs["side"], sorted(r.inputs["pks"])) for r in runs())
    assert fired == [("created", "new", sorted([pks["S-1"], pks["S-2"]])), ("updated", "old", [pks["S-0"]])]


def test_the_loop_guard_applies_to_stored_rows() -> None:
    welcome = define("welcome", [("CustomerUpdateNode", "mark", {"id": "{{pk}}", "fields": {"tier": "w"}})])
    rule(welcome, event="created")
    rule(welcome, event="updated")
    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    [first] = runs("welcome")  # its update of the same customer started nothing
    assert first.status == "succeeded" and first.inputs["event"] == "created"
    customer.refresh_from_db()
    assert customer.tier == "w"


def test_a_disabled_row_fires_nothing_and_enabling_it_fires_again() -> None:
    saved = rule(audit(), enabled=False)
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs() == []
    saved.enabled = True
    saved.save()
    Customer.objects.create(name="Bob", email="bob@example.com")
    assert [r.inputs["event"] for r in runs()] == ["created"]


def test_a_deleted_row_stops_firing_and_its_receivers_go() -> None:
    assert receivers_of(Shipment) == (False, False)
    saved = rule(audit(), model="shop.Shipment", event="deleted")
    assert receivers_of(Shipment) == (True, True)
    Shipment.objects.create().delete()
    assert len(runs()) == 1
    saved.delete()
    # No receiver is left: QuerySet.delete() of Shipment is Django's fast delete again.
    assert receivers_of(Shipment) == (False, False)
    Shipment.objects.create().delete()
    assert len(runs()) == 1


def test_deleting_the_definition_deletes_its_rows() -> None:
    definition = audit()
    rule(definition)
    definition.delete()
    assert not ModelTriggerRule.objects.exists()
    assert triggers_for(Customer, "created") == []


def test_a_renamed_definition_is_started_by_its_new_name() -> None:
    definition = audit()
    rule(definition)
    definition.name = "audit2"
    definition.save()
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs("audit") == [] and len(runs("audit2")) == 1


# ---------------------------------------------------------------------------------- refresh


def changed_elsewhere(definition: WorkflowDefinition) -> None:
    """A row written without this process's signals, as another process's save looks from here."""
    ModelTriggerRule.objects.bulk_create([
        ModelTriggerRule(model="shop.Customer", event="created", definition=definition)
    ])


def test_a_row_added_elsewhere_is_picked_up_after_the_refresh_interval(settings: Any, client: Client) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "TRIGGER_REFRESH_SECONDS": 30}
    changed_elsewhere(audit())
    client.get("/admin/login/")  # a request: a check point, but the interval has not passed
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs() == []
    stored._state["loaded_at"] = time.monotonic() - 31  # as if 31 seconds had passed
    client.get("/admin/login/")
    Customer.objects.create(name="Bob", email="bob@example.com")
    assert [r.inputs["pk"] for r in runs()] == [Customer.objects.get(name="Bob").pk]


def test_a_row_disabled_elsewhere_stops_firing_after_a_task_starts(settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "TRIGGER_REFRESH_SECONDS": 5}
    saved = rule(audit())
    ModelTriggerRule.objects.filter(pk=saved.pk).update(enabled=False)  # no signal
    stored._state["loaded_at"] = time.monotonic() - 6
    from django_dataflow.tasks import _refresh_stored_triggers

    _refresh_stored_triggers()  # what Celery's task_prerun calls before every task of a worker
    Customer.objects.create(name="Ada", email="ada@example.com")
    assert runs() == []


def test_without_an_interval_only_the_first_connection_reads(settings: Any) -> None:
    changed_elsewhere(audit())
    stored._state["loaded_at"] = time.monotonic() - 10_000
    with CaptureQueriesContext(connection) as queries:
        stored.maybe_refresh()  # TRIGGER_REFRESH_SECONDS None (the test settings)
    assert len(queries) == 0 and triggers_for(Customer, "created") == []
    stored._state["loaded_at"] = None  # a process that has not read yet: its first check point reads
    stored.maybe_refresh()
    assert [t.definition for t in triggers_for(Customer, "created")] == ["audit"]


def test_a_check_point_before_the_interval_costs_no_query(settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "TRIGGER_REFRESH_SECONDS": 30}
    stored.refresh()
    with CaptureQueriesContext(connection) as queries:
        stored.maybe_refresh()
    assert len(queries) == 0


def test_a_new_connection_is_a_check_point(settings: Any) -> None:
    changed_elsewhere(audit())
    stored._state["loaded_at"] = None
    # What connecting sends (an in-memory SQLite test database is never really reconnected).
    connection_created.send(sender=type(connection), connection=connection)
    assert [t.rule is not None for t in triggers_for(Customer, "created")] == [True]


def test_a_missing_table_keeps_what_was_loaded(monkeypatch: Any, caplog: Any) -> None:
    rule(audit())
    from django.db import DatabaseError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("no such table: django_dataflow_modeltriggerrule")

    monkeypatch.setattr(stored, "_guarded", broken)
    assert stored.refresh() == 0
    assert len(triggers_for(Customer, "created")) == 1


# ---------------------------------------------------------------------------------- the command


def test_the_command_lists_code_and_stored_triggers(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    definition = audit()
    saved = rule(definition, inputs={"source": "crm"}, per_row=True)
    rule(definition, event="deleted", enabled=False)
    code = django_dataflow.on_commit_of(Product, "updated", definition="audit")
    try:
        call_command("dataflow_schedules", "--triggers")
    finally:
        code.disconnect()
    lines = capsys.readouterr().out.splitlines()
    assert ["code", "shop.Product", "updated", "->", "audit", "-"] in [line.split() for line in lines]
    assert lines[-3].split() == ["row", str(saved.pk), "shop.Customer", "created", "->", "audit", "per_row",
                                 "enabled", 'inputs={"source":', '"crm"}']
    assert lines[-2].split()[-3:] == ["-", "disabled", "inputs={}"]
    code_count = len(lines) - 3  # one line per code trigger registered in this process
    assert lines[-1] == f"{code_count} code trigger(s), 2 stored trigger(s)"
    with pytest.raises(CommandError) as info:
        call_command("dataflow_schedules", "--triggers", "--sync")
    assert info.value.returncode == 2 and "--triggers" in str(info.value)


def test_a_row_for_a_model_this_application_does_not_register_is_a_warning(caplog: Any) -> None:
    from django_dataflow.checks import check_stored_trigger_models

    definition = audit()
    rule(definition)
    assert check_stored_trigger_models() == []
    # Another application sharing the database saved it: written without this one's validation.
    ModelTriggerRule.objects.bulk_create([
        ModelTriggerRule(model="other.Invoice", event="created", definition=definition)
    ])
    [warning] = check_stored_trigger_models()
    assert warning.id == "django_dataflow.W071" and "(other.Invoice created)" in warning.msg
    with caplog.at_level("WARNING", logger="django_dataflow.triggers"):
        assert stored.refresh() == 2
    assert "model 'other.Invoice' is not registered here" in caplog.text
    assert len(triggers_for(Customer, "created")) == 1  # the other row still fires
