"""Fixtures of the HTTP API tests: users with permissions, tokens, and a client that validates
every response it gets against the served OpenAPI document."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

BASE = "/dataflow"


@cache
def served_document() -> dict[str, Any]:
    """The OpenAPI document as GET schema/ serves it, validated as OpenAPI 3.1."""
    from openapi_spec_validator import validate

    response = Client().get(f"{BASE}/schema/")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    return document


def _operation(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The documented path template and operation answering method + path (None: undocumented)."""
    relative = path.removeprefix(document["servers"][0]["url"].rstrip("/"))
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, relative) or re.match(pattern, relative + "/") or re.match(
            pattern, relative.removesuffix("/")
        ):
            if method.lower() in operations:
                return template, operations[method.lower()]
    return None


def check_response(method: str, path: str, response: Any) -> None:
    """Assert the response is documented: its status, content type, headers and JSON body."""
    from jsonschema import Draft202012Validator

    document = served_document()
    found = _operation(document, method, path)
    status = str(response.status_code)
    if found is None:  # an undocumented path or method may only be refused, in the error shape
        assert status in ("404", "405"), f"{method} {path} is undocumented but answered {status}"
        found = (path, {"responses": {status: {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}})
    template, operation = found
    documented = operation["responses"].get(status)
    assert documented is not None, f"{method} {template} answered {status}, not documented"
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    for header in documented.get("headers", {}):
        assert response.has_header(header), f"{method} {template} {status} lacks header {header}"
    schema = documented["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(json.loads(response.content)), key=str)
    assert not errors, f"{method} {template} {status}: " + "; ".join(e.message for e in errors[:5])


class ApiClient(Client):
    """A test client for the API: JSON bodies, bearer tokens, and every response validated."""

    def __init__(self, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.checked = 0

    def request(self, **request: Any) -> Any:
        """Send, then validate the response against the OpenAPI document."""
        if self.token is not None:
            request.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        response = super().request(**request)
        if request["PATH_INFO"].startswith(BASE + "/"):
            check_response(request["REQUEST_METHOD"], request["PATH_INFO"], response)
            self.checked += 1
        return response

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST a JSON body (an empty body when None)."""
        data = "" if body is None else json.dumps(body)
        return self.post(f"{BASE}/{path}", data=data, content_type="application/json", **kwargs)

    def get_api(self, path: str, **kwargs: Any) -> Any:
        """GET a path under the API."""
        return self.get(f"{BASE}/{path}", **kwargs)


def grant(user: User, *codenames: str) -> User:
    """Give user these permissions ('app_label.codename') and return it fresh (caches cleared)."""
    for name in codenames:
        app_label, codename = name.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        user.user_permissions.add(permission)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def alice(db: Any) -> User:
    """A user who may create, view, change and delete products and orders."""
    user = User.objects.create_user("alice", password="pw")
    actions = ("add", "view", "change", "delete")
    return grant(user, *(f"shop.{a}_{m}" for a in actions for m in ("product", "order")))


@pytest.fixture
def bob(db: Any) -> User:
    """A user with no permission at all."""
    return User.objects.create_user("bob", password="pw")


@pytest.fixture
def alice_token(alice: User) -> str:
    """A raw bearer token of alice."""
    from django_dataflow.models import ApiToken

    return ApiToken.issue(alice, "tests")[1]


@pytest.fixture
def api(alice_token: str) -> ApiClient:
    """A client authenticated as alice with her token."""
    return ApiClient(alice_token)


@pytest.fixture
def anonymous() -> ApiClient:
    """A client without credentials."""
    return ApiClient()


@pytest.fixture
def create_definition(db: Any) -> Any:
    """A WorkflowDefinition 'new-product' creating a product from inputs."""
    from django_dataflow.models import WorkflowDefinition

    return WorkflowDefinition.objects.create(
        name="new-product",
        workflow={"nodes": [{"id": "p", "type": "ProductCreateNode",
                             "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "{{price}}"}}]},
    )


@pytest.fixture
def unchanged_db(db: Any) -> Any:
    """Asserts at teardown that the test left the database as it found it, except the
    last_used_at a token request writes (tests/conftest.py's fixture, less ApiToken)."""
    from tests.conftest import db_state

    def state() -> dict[str, str]:
        return {k: v for k, v in db_state().items() if k != "django_dataflow.ApiToken"}

    before = state()
    yield before
    assert state() == before
