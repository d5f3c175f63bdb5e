"""Tenant runs on a real Celery worker process (testproject.settings_tenants, the test Redis).

Probe rows get their schema and search_path from the database (column defaults), so they show
inside the task which schema the worker's connection was really in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django_tenants.utils import schema_context

from django_dataflow import CeleryRuntime, NodeExecutionError
from shop.models import Product
from tests.celery_support import WorkerProcess, client_app, require_celery_and_redis, sending_to
from tests.conftest import build
from tests.tenants.conftest import rows, schema_state
from tests.tenants.test_isolation import CASES, seed

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

QUEUE = f"dataflow-tenants-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One single-process worker: every task runs on the same connection, one after the other."""
    require_celery_and_redis()
    db_name = str(connections["default"].settings_dict["NAME"])
    process = WorkerProcess(
        QUEUE, db_name, tmp_path_factory.mktemp("tenant-workers"), concurrency=1,
        settings="testproject.settings_tenants",
    ).start()
    yield process
    process.stop()
    import redis

    from tests.celery_support import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{QUEUE}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def through_the_test_redis() -> Iterator[None]:
    with sending_to(QUEUE):
        yield


def probe(label: str, fail: bool = False) -> Any:
    """Record the connection's schema and search_path; with fail, then fail (a duplicate sku)."""
    nodes: list[tuple] = [("ProbeCreateNode", "probe", {"label": label})]
    if fail:
        nodes += [("ProductCreateNode", "a", {"name": "x", "sku": "DUP", "price": "1"}),
                  ("ProductCreateNode", "b", {"name": "y", "sku": "DUP", "price": "1"})]
    return build(nodes)


def test_tenant_runs_on_a_worker_write_and_record_in_their_own_schema(
    tenants: Any, worker: WorkerProcess
) -> None:
    workflow = build(
        [("ProductCreateNode", "p", {"name": "{{who}}", "sku": "W-1", "price": "1"}),
         ("ProductListNode", "all", {})],
    )
    handles = {t: CeleryRuntime().submit(workflow, {"who": t}, tenant=t) for t in ("alpha", "beta")}
    for tenant, handle in handles.items():
        results = handle.wait(60)
        assert [r["name"] for r in results["all"]["records"]] == [tenant], worker.log()[-3000:]
        assert rows(tenant, "django_dataflow_workflowrun", "run_id::text, tenant, status, runtime") == [
            (handle.run_id, tenant, "succeeded", "celery")
        ]
    assert rows("public", "django_dataflow_workflowrun") == []
    assert rows("gamma", "shop_product") == []


def test_isolation_through_celery_with_connections(tenants: Any, worker: WorkerProcess) -> None:
    for schema in ("alpha", "beta"):
        with schema_context(schema):
            Product.objects.create(name=f"{schema}-lamp", sku="S-1", price="1", stock=1)
    beta_before = schema_state("beta")
    workflow = build(
        [("ProductReadNode", "read", {"conditions": {"sku": "S-1"}}),
         ("ProductUpdateNode", "update", {"fields": {"stock": 50}}),
         ("ProductAggregateNode", "sum", {"pipeline": [{"$group": {"_id": None, "s": {"$sum": "$stock"}}}]})],
        [("read", "id", "update", "id")],
    )
    results = CeleryRuntime().submit(workflow, tenant="alpha").wait(60)
    assert results["update"]["name"] == "alpha-lamp"
    assert results["sum"]["results"][0]["s"] == 50
    assert "beta" not in json.dumps(results)
    assert schema_state("beta") == beta_before


def test_a_worker_serving_tenants_in_turn_never_leaks_a_schema(tenants: Any, worker: WorkerProcess) -> None:
    sequence = [
        ("alpha", False), ("beta", False), (None, False), ("alpha", True), (None, False), ("beta", False)
    ]
    for tenant, fail in sequence:
        handle = CeleryRuntime().submit(probe(f"{tenant}-{fail}", fail), tenant=tenant)
        if fail:
            with pytest.raises(NodeExecutionError) as caught:
                handle.wait(60)
            assert caught.value.node_id == "b"
        else:
            handle.wait(60)
    seen = {
        schema: [
            (label, path.replace('"', ""))
            for _, label, path in rows(schema, "probe_probe", "id, label, search_path")
        ]
        for schema in ("alpha", "beta", "public")
    }
    assert seen == {
        "alpha": [("alpha-False", "alpha, public")],  # the failed run's probe rolled back with it
        "beta": [("beta-False", "beta, public"), ("beta-False", "beta, public")],
        "public": [("None-False", "public"), ("None-False", "public")],
    }, worker.log()[-3000:]
    runs = sorted(r[1:] for r in rows("alpha", "django_dataflow_workflowrun", "run_id, status, error_node"))
    assert runs == [("failed", "b"), ("succeeded", "")]


def send(kwargs: dict[str, Any]) -> Any:
    import django_dataflow.tasks  # noqa: F401  (registers the task with the client app)

    task = client_app.tasks["django_dataflow.run_workflow"]
    return task.apply_async(kwargs=kwargs, queue=QUEUE)


def test_a_message_naming_another_or_an_unknown_schema_runs_nothing(
    tenants: Any, worker: WorkerProcess
) -> None:
    # Submitted to a queue no worker consumes: the run stays pending in alpha's schema.
    handle = CeleryRuntime(f"{QUEUE}-nobody").submit(probe("forged"), tenant="alpha")
    before = {s: schema_state(s) for s in ("public", *tenants)}
    assert send({"run_id": handle.run_id, "schema": "beta"}).get(timeout=60)["state"] == "skipped"
    assert send({"run_id": handle.run_id}).get(timeout=60)["state"] == "skipped"  # public
    with pytest.raises(Exception, match="unknown tenant 'nope'"):
        send({"run_id": handle.run_id, "schema": "nope"}).get(timeout=60)
    assert {s: schema_state(s) for s in ("public", *tenants)} == before
    assert handle.status() == "pending"
    # The real message, finally delivered, runs it in alpha.
    assert send({"run_id": handle.run_id, "schema": "alpha"}).get(timeout=60)["state"] == "succeeded"
    assert rows("alpha", "probe_probe", "label, schema") == [("forged", "alpha")]


@pytest.mark.parametrize("case", list(CASES))
def test_every_node_type_on_a_worker_touches_and_returns_only_its_tenants_rows(
    tenants: Any, worker: WorkerProcess, case: str
) -> None:
    seed("alpha", 3)
    seed("beta", 4)
    nodes, links, check = CASES[case]
    others = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    results = CeleryRuntime().submit(build(nodes, links), tenant="alpha").wait(60)
    assert check(results), results
    assert "beta" not in json.dumps(results)
    assert {schema: schema_state(schema) for schema in others} == others


@pytest.mark.schedules
def test_an_all_tenants_schedule_fired_by_the_worker_runs_in_each_tenant(
    tenants: Any, worker: WorkerProcess
) -> None:
    """What beat sends: the worker fires the (public) schedule, and each tenant's run goes to the
    queue and runs on the worker in its own schema."""
    from django_dataflow.models import DefinitionSchedule, WorkflowDefinition

    workflow = build([("ProductCreateNode", "p", {"name": "N", "sku": "{{sku}}", "price": "1"})])
    definition = WorkflowDefinition.objects.create(name="nightly", workflow=workflow.to_dict())
    schedule = DefinitionSchedule.objects.create(
        definition=definition, interval_seconds=3600, all_tenants=True, inputs={"sku": "N-1"}
    )
    fired = client_app.send_task(
        "django_dataflow.fire_schedule", kwargs={"schedule_id": schedule.pk}, queue=QUEUE
    ).get(timeout=60)
    assert [(f["state"], f["tenant"]) for f in fired] == [("started", t) for t in ("alpha", "beta", "gamma")]
    for entry in fired:
        tenant = entry["tenant"]
        CeleryRuntime().handle(entry["run_id"], tenant=tenant).wait(60)
        assert rows(tenant, "shop_product", "sku") == [("N-1",)], worker.log()[-3000:]
        assert rows(tenant, "django_dataflow_workflowrun", "run_id::text, tenant, status") == [
            (entry["run_id"], tenant, "succeeded")
        ]
    assert rows("public", "django_dataflow_workflowrun") == []


def test_a_write_in_alpha_triggers_a_run_on_the_worker_in_alpha(tenants: Any, worker: WorkerProcess) -> None:
    import django_dataflow
    from django_dataflow.models import WorkflowDefinition
    from shop.models import Customer

    mark = build([("CustomerUpdateNode", "mark", {"id": "{{pk}}", "fields": {"tier": "welcomed"}})])
    WorkflowDefinition.objects.create(name="welcome", workflow=mark.to_dict())
    trigger = django_dataflow.on_commit_of(Customer, "created", definition="welcome")
    try:
        with schema_context("beta"):
            Customer.objects.create(name="B", email="same@example.com")
        with schema_context("alpha"):
            customer = Customer.objects.create(name="A", email="same@example.com")
        [run_id] = [r[0] for r in rows("alpha", "django_dataflow_workflowrun", "run_id::text")]
        CeleryRuntime().handle(run_id, tenant="alpha").wait(60)
    finally:
        trigger.disconnect()
    assert rows("alpha", "shop_customer", "id, tier") == [(customer.pk, "welcomed")], worker.log()[-3000:]
    assert rows("alpha", "django_dataflow_workflowrun", "tenant, status, runtime") == [
        ("alpha", "succeeded", "celery")
    ]
    # beta's customer (same pk) was welcomed by beta's own run, recorded in beta's schema.
    [(beta_run, beta_tenant)] = rows("beta", "django_dataflow_workflowrun", "run_id::text, tenant")
    CeleryRuntime().handle(beta_run, tenant="beta").wait(60)
    assert beta_tenant == "beta" and rows("beta", "shop_customer", "tier") == [("welcomed",)]
    assert rows("public", "django_dataflow_workflowrun") == []
