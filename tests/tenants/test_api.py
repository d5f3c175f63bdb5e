"""The HTTP API on real schemas: django-tenants' middleware routes each request by its Host header
(alpha.test, beta.test) and the run happens in, and is visible from, that tenant only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from django_dataflow.models import ApiToken, WorkflowDefinition
from tests.tenants.conftest import rows, schema_state

BASE = "/dataflow"


@pytest.fixture
def eager(tenants: Any) -> Iterator[tuple[str, ...]]:
    """CeleryRuntime runs in this process (?wait=1 sees the run finish)."""
    with override_settings(DATAFLOW={**settings.DATAFLOW, "CELERY_EAGER": True}):
        yield tenants


@pytest.fixture
def alice(eager: Any) -> User:
    """A user (public schema) who may add products: the permission is checked inside the tenant."""
    user = User.objects.create_user("alice", password="pw")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="shop", codename="add_product"))
    WorkflowDefinition.objects.create(
        name="new-product",
        workflow={"nodes": [{"id": "p", "type": "ProductCreateNode",
                             "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "{{price}}"}}]},
    )
    return User.objects.get(pk=user.pk)


def token_in(schema: str, user: User) -> str:
    """A raw token issued inside one tenant's schema (where its ApiToken row is stored)."""
    with schema_context(schema):
        return ApiToken.issue(user, "tests")[1]


def call(method: str, host: str, path: str, token: str, body: Any = None) -> Any:
    """One API request to a tenant's domain."""
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {token}")
    if method == "POST":
        return client.post(f"{BASE}/{path}", data=json.dumps(body or {}), content_type="application/json")
    return client.get(f"{BASE}/{path}")


def test_a_run_posted_to_alpha_writes_alpha_rows_only_and_is_recorded_there(alice: User) -> None:
    token = token_in("alpha", alice)
    untouched = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    response = call("POST", "alpha.test", "workflows/new-product/runs?wait=1", token,
                    {"inputs": {"name": "A", "sku": "A-1", "price": "2.50"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded" and body["tenant"] == "alpha"
    assert rows("alpha", "shop_product", "sku") == [("A-1",)]
    assert rows("alpha", "django_dataflow_workflowrun", "run_id::text, tenant") == [(body["run_id"], "alpha")]
    assert {schema: schema_state(schema) for schema in ("beta", "gamma", "public")} == untouched
    # Read back from alpha: found; the same run id asked on beta.test: 404 (beta's schema has no such run).
    assert call("GET", "alpha.test", f"runs/{body['run_id']}", token).json()["status"] == "succeeded"
    beta_token = token_in("beta", alice)
    missing = call("GET", "beta.test", f"runs/{body['run_id']}", beta_token)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_the_same_definition_posted_to_two_tenants_runs_once_in_each(alice: User) -> None:
    for schema in ("alpha", "beta"):
        token = token_in(schema, alice)
        response = call("POST", f"{schema}.test", "workflows/new-product/runs?wait=1", token,
                        {"inputs": {"name": schema, "sku": "SAME", "price": "1.00"}})
        assert response.status_code == 200 and response.json()["tenant"] == schema
    assert rows("alpha", "shop_product", "name, sku") == [("alpha", "SAME")]
    assert rows("beta", "shop_product", "name, sku") == [("beta", "SAME")]
    assert rows("gamma", "shop_product") == []


def test_a_token_is_valid_only_in_the_tenant_it_was_issued_in(alice: User) -> None:
    token = token_in("alpha", alice)
    assert call("GET", "alpha.test", "nodes/", token).status_code == 200
    before = {schema: schema_state(schema) for schema in ("alpha", "beta", "gamma")}
    refused = call("POST", "beta.test", "workflows/new-product/runs?wait=1", token,
                   {"inputs": {"name": "B", "sku": "B-1", "price": "1.00"}})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "NotAuthenticated"
    assert {schema: schema_state(schema) for schema in ("alpha", "beta", "gamma")} == before
    assert rows("alpha", "django_dataflow_apitoken", "name") == [("tests",)]
    assert rows("beta", "django_dataflow_apitoken") == [] and rows("public", "django_dataflow_apitoken") == []


def test_an_unknown_host_reaches_no_tenant(alice: User) -> None:
    token = token_in("alpha", alice)
    before = schema_state("alpha")
    response = call("POST", "nobody.test", "workflows/new-product/runs?wait=1", token,
                    {"inputs": {"name": "X", "sku": "X-1", "price": "1.00"}})
    assert response.status_code == 404
    assert schema_state("alpha") == before


def test_the_run_list_shows_the_routed_tenants_runs_only(alice: User) -> None:
    # With view_workflowrun "every run" still means every run of the request's tenant.
    alice.user_permissions.add(Permission.objects.get(codename="view_workflowrun"))
    tokens = {schema: token_in(schema, alice) for schema in ("alpha", "beta", "gamma")}
    posted = {}
    for schema in ("alpha", "beta"):
        response = call("POST", f"{schema}.test", "workflows/new-product/runs?wait=1", tokens[schema],
                        {"inputs": {"name": schema, "sku": schema, "price": "1.00"}})
        posted[schema] = response.json()["run_id"]
    for schema in ("alpha", "beta"):
        listed = call("GET", f"{schema}.test", "runs/", tokens[schema])
        assert listed.status_code == 200, listed.content
        assert [(r["run_id"], r["tenant"]) for r in listed.json()["runs"]] == [(posted[schema], schema)]
    assert call("GET", "gamma.test", "runs/", tokens["gamma"]).json() == {"runs": [], "next": None}
