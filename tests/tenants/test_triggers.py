"""Triggers and schedules on real schemas (CeleryRuntime eager): a model-change trigger starts its
run in the tenant whose row changed; a schedule runs in its tenant, or once in every tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django_tenants.utils import schema_context

import django_dataflow
from django_dataflow.models import DefinitionSchedule, WorkflowDefinition
from django_dataflow.triggers import schedules
from django_dataflow.triggers.model_events import ModelTrigger
from shop.models import Customer
from tests.tenants.conftest import TENANTS, rows, schema_state, schema_tables

pytestmark = pytest.mark.postgres


@pytest.fixture
def eager(settings: Any, tenants: Any) -> None:
    """CeleryRuntime runs in this process."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "CELERY_RETRY_DELAY": 0.01}


@pytest.fixture
def welcome(eager: None) -> Iterator[ModelTrigger]:
    """'welcome' (marks the new customer) started by every committed Customer creation."""
    params = {"id": "{{pk}}", "fields": {"tier": "welcomed"}}
    mark = {"id": "mark", "type": "CustomerUpdateNode", "params": params}
    WorkflowDefinition.objects.create(name="welcome", workflow={"nodes": [mark]})
    trigger = django_dataflow.on_commit_of(Customer, "created", definition="welcome")
    yield trigger
    trigger.disconnect()


def test_a_write_in_alpha_triggers_a_run_in_alpha(welcome: ModelTrigger) -> None:
    untouched = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    with schema_context("beta"):  # beta holds a customer with the same pk, which must stay as it is
        Customer.objects.create(name="B", email="same@example.com")
    untouched["beta"] = schema_state("beta")
    with schema_context("alpha"), transaction.atomic():
        customer = Customer.objects.create(name="A", email="same@example.com")
    assert rows("alpha", "shop_customer", "id, tier") == [(customer.pk, "welcomed")]
    [(run_tenant, status, inputs, trigger)] = rows(
        "alpha", "django_dataflow_workflowrun", "tenant, status, inputs, trigger"
    )
    assert (run_tenant, status) == ("alpha", "succeeded")
    inputs, trigger = json.loads(inputs), json.loads(trigger)  # jsonb comes back as text on a raw cursor
    assert inputs == {"model": "shop.Customer", "event": "created", "pk": customer.pk}
    assert trigger["kind"] == "model" and trigger["pks"] == [customer.pk]
    # beta's own creation ran beta's welcome; nothing else changed anywhere.
    assert rows("beta", "shop_customer", "tier") == [("welcomed",)]
    assert {schema: schema_state(schema) for schema in ("beta", "gamma", "public")} == untouched


def test_a_rolled_back_write_in_alpha_triggers_nothing(welcome: ModelTrigger) -> None:
    before = {schema: schema_state(schema) for schema in ("public", *TENANTS)}
    with schema_context("alpha"), pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.create(name="A", email="a@example.com")
        raise RuntimeError("rolled back")
    assert {schema: schema_state(schema) for schema in ("public", *TENANTS)} == before


def nightly(**fields: Any) -> DefinitionSchedule:
    """A schedule (public schema) of a definition creating one product."""
    create = {"id": "p", "type": "ProductCreateNode", "params": {"name": "N", "sku": "{{sku}}", "price": "1"}}
    definition = WorkflowDefinition.objects.create(name="nightly", workflow={"nodes": [create]})
    return DefinitionSchedule.objects.create(
        definition=definition, interval_seconds=60, inputs={"sku": "N-1"}, **fields
    )


@pytest.mark.schedules
def test_an_all_tenants_schedule_fires_one_run_in_each_tenant(eager: None) -> None:
    from django_celery_beat.models import PeriodicTask

    schedule = nightly(all_tenants=True)
    assert PeriodicTask.objects.filter(name=schedule.task_name).exists()
    public_before = schema_state("public")
    fired = schedules.fire(schedule.pk)
    assert [(f["state"], f["tenant"]) for f in fired] == [("started", t) for t in TENANTS]
    for entry in fired:
        schema = entry["tenant"]
        assert rows(schema, "shop_product", "sku") == [("N-1",)]
        assert rows(schema, "django_dataflow_workflowrun", "run_id::text, tenant, status") == [
            (entry["run_id"], schema, "succeeded")
        ]
    assert schema_state("public") == public_before


@pytest.mark.schedules
def test_a_schedule_for_one_tenant_runs_only_there(eager: None) -> None:
    schedule = nightly(tenant="beta")
    others = {schema: schema_state(schema) for schema in ("public", "alpha", "gamma")}
    [fired] = schedules.fire(schedule.pk)
    assert (fired["state"], fired["tenant"]) == ("started", "beta")
    assert rows("beta", "shop_product", "sku") == [("N-1",)]
    assert {schema: schema_state(schema) for schema in ("public", "alpha", "gamma")} == others


@pytest.mark.schedules
def test_a_schedule_fired_from_a_connection_left_in_a_tenant_still_finds_its_row(eager: None) -> None:
    """Beat's task may run on a worker connection in any schema: the schedule row is public-only."""
    schedule = nightly(tenant="beta")
    with schema_context("alpha"):
        [fired] = schedules.fire(schedule.pk)
    assert (fired["state"], fired["tenant"]) == ("started", "beta")
    assert rows("beta", "shop_product", "sku") == [("N-1",)]
    assert rows("alpha", "shop_product") == []


@pytest.mark.schedules
def test_overlap_skip_looks_for_the_unfinished_run_in_each_tenants_own_schema(eager: None) -> None:
    schedule = nightly(all_tenants=True, overlap="allow")
    first = {f["tenant"]: f["run_id"] for f in schedules.fire(schedule.pk)}
    DefinitionSchedule.objects.filter(pk=schedule.pk).update(overlap="skip")
    with schema_context("alpha"):  # alpha's run is still at work, as far as its schema says
        from django_dataflow.models import WorkflowRun

        WorkflowRun.objects.filter(pk=first["alpha"]).update(status="running")
    fired = schedules.fire(schedule.pk)
    assert [(f["state"], f["tenant"]) for f in fired] == [
        ("skipped", "alpha"), ("started", "beta"), ("started", "gamma")
    ]
    assert fired[0]["running"] == first["alpha"]
    assert len(rows("alpha", "django_dataflow_workflowrun")) == 1
    assert len(rows("beta", "django_dataflow_workflowrun")) == 2


@pytest.mark.schedules
def test_a_schedule_without_tenant_fired_from_a_tenant_connection_runs_in_public(eager: None) -> None:
    create = {"id": "p", "type": "ProbeCreateNode", "params": {"label": "{{sku}}"}}
    definition = WorkflowDefinition.objects.create(name="probe", workflow={"nodes": [create]})
    schedule = DefinitionSchedule.objects.create(
        definition=definition, interval_seconds=60, inputs={"sku": "P"}
    )
    alpha = schema_state("alpha")
    with schema_context("alpha"):
        [fired] = schedules.fire(schedule.pk)
    assert (fired["state"], fired["tenant"]) == ("started", None)
    assert rows("public", "django_dataflow_workflowrun", "tenant, status") == [("", "succeeded")]
    assert rows("public", "probe_probe", "label, schema") == [("P", "public")]
    assert schema_state("alpha") == alpha


@pytest.mark.schedules
def test_schedules_live_in_the_public_schema_only(tenants: Any) -> None:
    assert "django_dataflow_definitionschedule" in schema_tables("public")
    assert "django_celery_beat_periodictask" in schema_tables("public")
    for schema in TENANTS:
        assert "django_dataflow_definitionschedule" not in schema_tables(schema)
