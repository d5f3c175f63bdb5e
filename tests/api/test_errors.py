"""Bad input and refusals: always the JSON error shape with the right status, database unchanged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import override_settings

from django_dataflow.models import ApiToken
from tests.api.conftest import BASE, ApiClient, grant

pytestmark = pytest.mark.django_db

PRODUCT = {"name": "Lamp", "sku": "L-1", "price": "19.99"}
HALF_PAST = dt.datetime(2026, 3, 29, 12, 30, tzinfo=dt.UTC)


def node(type_: str, params: Any, id_: str = "n") -> dict[str, Any]:
    return {"id": id_, "type": type_, "params": params}


@pytest.fixture
def adhoc(alice: User, alice_token: str) -> ApiClient:
    """alice, allowed to run ad-hoc workflows."""
    grant(alice, "django_dataflow.run_adhoc_workflow")
    return ApiClient(alice_token)


def post_raw(client: ApiClient, path: str, data: bytes | str) -> Any:
    return client.post(f"{BASE}/{path}", data=data, content_type="application/json")


@pytest.mark.parametrize(("body", "named"), [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, not list"),
    (b'"text"', "must be a JSON object, not str"),
    (b'{"workflow": {"nodes": []}, "x": 1}', "unknown body keys ['x']"),
    (b"{}", "the body needs ['workflow']"),
    (b'{"workflow": {"nodes": []}, "inputs": [1]}', "'inputs' must be a JSON object"),
    (b'{"workflow": {"nodes": [], "x": 1}}', "unknown workflow keys ['x']"),
    (b'{"workflow": {"nodes": {}}}', "must be lists"),
    (b'{"workflow": 5}', "a workflow must be an object"),
    (b'{"workflow": {"nodes": [{"id": "a", "type": "ProductCreateNode", "params": {"price": NaN}}]}}',
     "NaN is not a JSON value"),
    (b'{"workflow": {"nodes": [{"id": "a"}]}}', "missing ['type']"),
    (b"[" * 5000 + b"]" * 5000, "nested deeper"),
])
def test_bad_bodies_are_400_naming_the_problem(
    adhoc: ApiClient, unchanged_db: Any, body: bytes, named: str
) -> None:
    response = post_raw(adhoc, "runs/", body)
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]["message"]


@pytest.mark.parametrize(("workflow", "named"), [
    ({"nodes": [node("GadgetCreateNode", {})]}, "GadgetCreateNode"),
    ({"nodes": [node("ProductCreateNode", {**PRODUCT, "colour": "red"})]}, "colour"),
    ({"nodes": [node("ProductListNode", {"filter": {"price": {"$near": 1}}})]}, "$near"),
    ({"nodes": [node("ProductListNode", {"filter": {"nope": 1}})]}, "nope"),
    ({"nodes": [node("ProductCreateNode", {"name": "x"})]}, "missing required field 'sku'"),
    ({"nodes": [node("ProductListNode", {}, "a"), node("ProductListNode", {}, "a")]}, "duplicate"),
    ({"nodes": [node("ProductListNode", {"limit": "many"})]}, "'limit'"),
])
def test_invalid_workflows_are_400_naming_node_field_or_operator(
    adhoc: ApiClient, unchanged_db: Any, workflow: dict[str, Any], named: str
) -> None:
    response = adhoc.post_json("runs/", {"workflow": workflow})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "WorkflowValidationError"
    assert named in error["message"] and any(named in e for e in error["details"]["errors"])


def test_missing_inputs_are_400(api: ApiClient, create_definition: Any, unchanged_db: Any) -> None:
    response = api.post_json("workflows/new-product/runs", {"inputs": {"name": "x"}})
    assert response.status_code == 400
    assert "price" in response.json()["error"]["message"]


def test_wait_must_be_a_flag(api: ApiClient, create_definition: Any, unchanged_db: Any) -> None:
    response = api.post_json("workflows/new-product/runs?wait=soon", {"inputs": PRODUCT})
    assert response.status_code == 400 and response.json()["error"]["details"] == {"param": "wait"}


def test_permission_denied_names_node_and_permission(
    bob: User, create_definition: Any, unchanged_db: Any
) -> None:
    bob_api = ApiClient(ApiToken.issue(bob, "b")[1])
    response = bob_api.post_json("workflows/new-product/runs", {"inputs": PRODUCT})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["node_id"] == "p" and error["details"] == {"permission": "shop.add_product"}
    assert "node 'p' (ProductCreateNode)" in error["message"]


def test_adhoc_permission_denied_for_a_node(adhoc: ApiClient, unchanged_db: Any) -> None:
    workflow = {"nodes": [node("UserListNode", {}, "users")]}
    response = adhoc.post_json("runs/", {"workflow": workflow})
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"permission": "auth.view_user"}


@pytest.mark.parametrize("path", [
    "workflows/no-such-thing/runs", "workflows/bad%00name/runs",
])
def test_unknown_definitions_are_404(api: ApiClient, path: str, unchanged_db: Any) -> None:
    response = api.post_json(path, {})
    assert response.status_code == 404 and response.json()["error"]["type"] == "NotFound"


@pytest.mark.parametrize("run_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_runs_are_404(api: ApiClient, run_id: str) -> None:
    for response in (api.get_api(f"runs/{run_id}"), api.get_api(f"runs/{run_id}/events"),
                     api.post_json(f"runs/{run_id}/cancel")):
        assert response.status_code == 404


def test_unknown_api_paths_are_json_404(api: ApiClient) -> None:
    response = api.get("/dataflow/runs/x/y/z")
    assert response.status_code == 404 and response.json()["error"]["type"] == "NotFound"


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("put", "nodes/", "GET"), ("put", "runs/", "GET, POST"), ("delete", "runs/" + "0" * 32, "GET"),
    ("get", "workflows/x/runs", "POST"), ("post", "schema/", "GET"),
])
def test_wrong_methods_are_405_with_allow(api: ApiClient, method: str, path: str, allowed: str) -> None:
    response = getattr(api, method)(f"{BASE}/{path}")
    assert response.status_code == 405 and response["Allow"] == allowed


def test_oversized_bodies_are_413(adhoc: ApiClient, unchanged_db: Any) -> None:
    params = {**PRODUCT, "description": "x" * 5000}
    big = json.dumps({"workflow": {"nodes": [node("ProductCreateNode", params)]}})
    with override_settings(DATAFLOW={"API_MAX_BODY_BYTES": 1000}):
        response = post_raw(adhoc, "runs/", big)
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"limit": 1000}


def test_params_beyond_max_params_bytes_are_400(adhoc: ApiClient, unchanged_db: Any) -> None:
    body = {"workflow": {"nodes": [node("ProductCreateNode", {**PRODUCT, "description": "x" * 5000})]}}
    with override_settings(DATAFLOW={"MAX_PARAMS_BYTES": 1000}):
        response = adhoc.post_json("runs/", body)
    assert response.status_code == 400 and "MAX_PARAMS_BYTES" in response.json()["error"]["message"]


def test_rate_limit_is_per_user_429_with_retry_after(api: ApiClient, bob: User) -> None:
    cache.clear()
    bob_api = ApiClient(ApiToken.issue(bob, "b")[1])
    # The windows are fixed clock hours: a real clock crossing one mid-test would reset the count.
    with override_settings(DATAFLOW={"API_RATE_LIMIT": "3/h"}), time_machine.travel(HALF_PAST, tick=False):
        assert [api.get_api("nodes/").status_code for _ in range(4)] == [200, 200, 200, 429]
        limited = api.get_api("nodes/")
        assert limited["Retry-After"] == "1800"  # the window ends at 13:00
        assert limited.json()["error"]["details"]["limit"] == 3
        assert bob_api.get_api("nodes/").status_code == 200  # a count per user
    cache.clear()


def test_unexpected_errors_are_json_500(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from django_dataflow.api import views

    def boom(entries: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(views, "catalog", boom)
    response = api.get_api("nodes/")
    assert response.status_code == 500
    assert response.json()["error"] == {
        "type": "InternalError", "message": "internal error; see the server log", "node_id": None,
        "details": None,
    }
