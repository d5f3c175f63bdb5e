"""Each endpoint's happy path: catalog, definition runs, ad-hoc runs, run detail, events, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from django_dataflow.models import WorkflowRun
from shop.models import Product
from tests.api.conftest import ApiClient, grant

pytestmark = pytest.mark.django_db

PRODUCT = {"name": "Lamp", "sku": "L-1", "price": "19.99"}
ADHOC = {"workflow": {"nodes": [{"id": "p", "type": "ProductCreateNode", "params": PRODUCT}]}}


def test_catalog_lists_every_node_with_a_params_schema(api: ApiClient) -> None:
    from jsonschema import Draft202012Validator

    response = api.get_api("nodes/")
    assert response.status_code == 200
    models = {m["model"]: m for m in response.json()["models"]}
    nodes = {n["type"]: n for n in models["shop.Product"]["nodes"]}
    create = nodes["ProductCreateNode"]
    assert create["permissions"] == ["shop.add_product"] and create["writes"] is True
    schema = create["params_schema"]
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"name": "Lamp", "sku": "L", "price": "1.50", "stock": 3})
    assert validator.is_valid({"name": "{{name}}"})  # a placeholder stands for any value
    assert not validator.is_valid({"colour": "red"})  # unknown params are refused by build() too
    assert not validator.is_valid({"stock": [1]})
    # Descriptions are the node classes' own.
    from django_dataflow.registry import get_node_class

    described = get_node_class("ProductListNode").param_descriptions()
    listed = nodes["ProductListNode"]["params_schema"]["properties"]
    assert {k: v["description"] for k, v in listed.items()} == described
    # auth.User is registered with its password hidden: not a param anywhere.
    user_create = {n["type"]: n for n in models["auth.User"]["nodes"]}["UserCreateNode"]
    assert "password" not in user_create["params_schema"]["properties"]


def test_definition_run_is_accepted_and_runs(
    api: ApiClient, create_definition: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["definition"] == "new-product"
    assert response["Location"] == f"/dataflow/runs/{body['run_id']}"
    detail = api.get_api(f"runs/{body['run_id']}").json()
    assert detail["status"] == "succeeded"
    assert detail["results"]["p"]["sku"] == "L-1"
    assert Product.objects.get().name == "Lamp"
    run = WorkflowRun.objects.get(pk=body["run_id"])
    assert run.user_id == str(User.objects.get(username="alice").pk)


def test_adhoc_run_needs_its_permission_then_runs(
    alice: User, alice_token: str, django_capture_on_commit_callbacks: Any
) -> None:
    api = ApiClient(alice_token)
    refused = api.post_json("runs/", ADHOC)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"permission": "django_dataflow.run_adhoc_workflow"}
    assert not WorkflowRun.objects.exists()
    grant(alice, "django_dataflow.run_adhoc_workflow")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post_json("runs/", {**ADHOC, "inputs": {}})
    assert response.status_code == 202
    assert api.get_api(f"runs/{response.json()['run_id']}").json()["status"] == "succeeded"
    assert Product.objects.filter(sku="L-1").exists()


def test_failed_run_reports_the_node_and_rolls_back(
    api: ApiClient, create_definition: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run_id = api.post_json(
            "workflows/new-product/runs", {"inputs": {**PRODUCT, "price": "not a price"}}
        ).json()["run_id"]
    detail = api.get_api(f"runs/{run_id}").json()
    assert detail["status"] == "failed" and detail["results"] is None
    assert detail["error"]["node_id"] == "p"
    assert "price" in detail["error"]["message"]
    assert not Product.objects.exists()
    events = api.get_api(f"runs/{run_id}/events").json()
    assert [e["type"] for e in events["events"]] == ["created", "started", "failed"]
    assert events["events"][-1]["error"]["node_id"] == "p"


def test_events_of_a_succeeded_run(
    api: ApiClient, create_definition: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    events = api.get_api(f"runs/{run_id}/events").json()
    assert events["finished"] is True and events["progress"] is None
    assert [e["type"] for e in events["events"]] == ["created", "started", "node_finished", "succeeded"]
    assert events["events"][2]["node_id"] == "p" and events["events"][2]["rows"] == 1


def test_events_of_a_pending_run(api: ApiClient, create_definition: Any) -> None:
    # Not inside django_capture_on_commit_callbacks: the run stays pending.
    run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    events = api.get_api(f"runs/{run_id}/events").json()
    assert events == {
        "run_id": run_id, "status": "pending", "finished": False, "progress": None,
        "events": [events["events"][0]],
    }
    assert events["events"][0]["type"] == "created"


def test_events_of_a_running_run_carry_its_live_progress(
    api: ApiClient, create_definition: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_dataflow.runtime import worker

    run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    WorkflowRun.objects.filter(pk=run_id).update(status="running", attempts=1)
    # What an eager run's bulk node publishes while it works (RunHandle.live_progress reads it).
    monkeypatch.setitem(worker.LOCAL_PROGRESS, run_id, {"node": "p", "done": 5, "total": 10})
    events = api.get_api(f"runs/{run_id}/events").json()
    assert (events["status"], events["progress"]) == ("running", {"node": "p", "done": 5, "total": 10})
    WorkflowRun.objects.filter(pk=run_id).update(status="succeeded")
    assert api.get_api(f"runs/{run_id}/events").json()["progress"] is None  # only while running


def test_cancel_a_pending_run_then_409(api: ApiClient, create_definition: Any) -> None:
    run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    response = api.post_json(f"runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = api.post_json(f"runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"status": "cancelled"}
    assert WorkflowRun.objects.get(pk=run_id).status == "cancelled"


def test_cancel_a_finished_run_is_a_conflict(
    api: ApiClient, create_definition: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    response = api.post_json(f"runs/{run_id}/cancel")
    assert response.status_code == 409
    assert "succeeded" in response.json()["error"]["message"]
    assert WorkflowRun.objects.get(pk=run_id).status == "succeeded"


def test_other_users_runs_are_not_found_unless_they_may_view_runs(
    api: ApiClient, bob: User, create_definition: Any
) -> None:
    from django_dataflow.models import ApiToken

    run_id = api.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).json()["run_id"]
    bob_api = ApiClient(ApiToken.issue(bob, "b")[1])
    assert bob_api.get_api(f"runs/{run_id}").status_code == 404
    assert bob_api.post_json(f"runs/{run_id}/cancel").status_code == 404
    bob = grant(bob, "django_dataflow.view_workflowrun")
    assert bob_api.get_api(f"runs/{run_id}").status_code == 200
    refused = bob_api.post_json(f"runs/{run_id}/cancel")
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["permission"] == "django_dataflow.cancel_workflowrun"
    assert WorkflowRun.objects.get(pk=run_id).status == "pending"


def test_trailing_slash_variants_answer_too(api: ApiClient, create_definition: Any) -> None:
    assert api.get("/dataflow/nodes").status_code == 200
    assert api.get("/dataflow/schema").status_code == 200
    response = api.post("/dataflow/workflows/new-product/runs/", data={"inputs": PRODUCT},
                        content_type="application/json")
    assert response.status_code == 202
    assert api.get(f"/dataflow/runs/{response.json()['run_id']}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_wait_returns_the_finished_run(alice_token: str, create_definition: Any) -> None:
    api = ApiClient(alice_token)
    response = api.post_json("workflows/new-product/runs?wait=1", {"inputs": PRODUCT})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded" and body["results"]["p"]["name"] == "Lamp"
    failed = api.post_json("workflows/new-product/runs?wait=1", {"inputs": PRODUCT})  # same sku
    assert failed.status_code == 200
    assert failed.json()["status"] == "failed" and failed.json()["error"]["node_id"] == "p"
    assert Product.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_wait_inside_atomic_requests_still_runs(
    alice_token: str, create_definition: Any, settings: Any
) -> None:
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        response = ApiClient(alice_token).post_json("workflows/new-product/runs?wait=1", {"inputs": PRODUCT})
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
