"""The HTTP API with real Celery workers and Redis (PostgreSQL pass only): the run row exists before
the worker runs it, ?wait=1 waits on the worker, and cancel races are decided by the row."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from django_dataflow.models import ApiToken, WorkflowDefinition, WorkflowRun
from shop.models import Product
from tests.api.conftest import ApiClient, grant
from tests.celery_support import WorkerProcess, require_celery_and_redis, sending_to

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = f"dataflow-api-test-{uuid.uuid4().hex[:8]}"
PRODUCT = {"name": "Lamp", "sku": "W-1", "price": "19.99"}


@pytest.fixture(scope="module")
def worker(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One worker on this module's queue, on pytest-django's test database."""
    require_celery_and_redis()
    db_name = str(connections["default"].settings_dict["NAME"])
    log_dir = Path(tmp_path_factory.mktemp("api-workers"))
    process = WorkerProcess(QUEUE, db_name, log_dir, concurrency=2).start()
    yield process
    process.stop()
    import redis

    from tests.celery_support import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{QUEUE}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def api_user(db: Any) -> tuple[User, ApiClient]:
    """A user allowed to add and view products, with a token client."""
    user = User.objects.create_user("worker-api", password="pw")
    user = grant(user, "shop.add_product", "shop.view_product")
    WorkflowDefinition.objects.create(
        name="new-product",
        workflow={"nodes": [{"id": "p", "type": "ProductCreateNode",
                             "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "{{price}}"}}]},
    )
    return user, ApiClient(ApiToken.issue(user, "w")[1])


def test_wait_runs_on_the_worker(worker: WorkerProcess, api_user: Any) -> None:
    _user, api = api_user
    with sending_to(QUEUE):
        response = api.post_json("workflows/new-product/runs?wait=1", {"inputs": PRODUCT})
    assert response.status_code == 200, worker.log()[-3000:]
    body = response.json()
    assert body["status"] == "succeeded" and body["runtime"] == "celery"
    assert body["results"]["p"]["sku"] == "W-1"
    assert Product.objects.filter(sku="W-1").exists()
    events = api.get_api(f"runs/{body['run_id']}/events").json()
    assert [e["type"] for e in events["events"]] == ["created", "started", "node_finished", "succeeded"]


def test_accepted_run_is_recorded_first_then_finished_by_the_worker(
    worker: WorkerProcess, api_user: Any
) -> None:
    _user, api = api_user
    with sending_to(QUEUE):
        response = api.post_json("workflows/new-product/runs", {"inputs": {**PRODUCT, "sku": "W-2"}})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = api.get_api(f"runs/{run_id}").json()["status"]
        if status in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert status == "succeeded", worker.log()[-3000:]
    assert api.post_json(f"runs/{run_id}/cancel").status_code == 409


def test_cancel_before_a_worker_takes_it(worker: WorkerProcess, api_user: Any) -> None:
    _user, api = api_user
    with sending_to(f"{QUEUE}-nobody"):  # no worker consumes this queue
        response = api.post_json("workflows/new-product/runs", {"inputs": {**PRODUCT, "sku": "W-3"}})
        run_id = response.json()["run_id"]
        response = api.post_json(f"runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert WorkflowRun.objects.get(pk=run_id).status == "cancelled"
    assert not Product.objects.filter(sku="W-3").exists()
