"""Authentication: bearer tokens (hashed, revocable, expiring), sessions with CSRF, and 401s."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_dataflow.api import tokens
from django_dataflow.models import ApiToken, WorkflowRun
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

PRODUCT = {"name": "Lamp", "sku": "L-1", "price": "19.99"}


def test_no_credentials_is_401_with_a_bearer_challenge(anonymous: ApiClient) -> None:
    for response in (anonymous.get_api("nodes/"), anonymous.post_json("runs/", {})):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"]["type"] == "NotAuthenticated"


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Token abc", "Basic YTpi", "bearer"])
def test_bad_authorization_headers_are_401(alice: User, header: str) -> None:
    response = ApiClient(HTTP_AUTHORIZATION=header).get_api("nodes/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_only_a_hash_of_the_token_is_stored(alice: User) -> None:
    token, raw = ApiToken.issue(alice, "ci")
    assert raw.startswith(tokens.TOKEN_PREFIX) and len(raw) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == tokens.digest(raw) and raw not in (stored.key_hash, stored.prefix)
    assert raw.startswith(stored.prefix)
    assert ApiToken.issue(alice, "ci")[1] != raw


def test_token_use_is_recorded(alice_token: str) -> None:
    assert ApiToken.objects.get().last_used_at is None
    assert ApiClient(alice_token).get_api("nodes/").status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


def test_revoked_and_expired_tokens_are_refused(alice: User) -> None:
    token, raw = ApiToken.issue(alice, "x")
    token.revoke()
    response = ApiClient(raw).get_api("nodes/")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    _old, old_raw = ApiToken.issue(alice, "old", expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = ApiClient(old_raw).get_api("nodes/")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_inactive_users_token_is_refused(alice: User, alice_token: str) -> None:
    alice.is_active = False
    alice.save()
    assert ApiClient(alice_token).get_api("nodes/").status_code == 401


def test_session_get_works_and_post_needs_csrf(alice: User, create_definition: Any) -> None:
    client = ApiClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get_api("nodes/").status_code == 200
    refused = client.post_json("workflows/new-product/runs", {"inputs": PRODUCT})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "CsrfFailed"
    assert not WorkflowRun.objects.exists()
    client.get("/admin/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post_json("workflows/new-product/runs", {"inputs": PRODUCT}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202


def test_a_token_request_needs_no_csrf(alice_token: str, create_definition: Any) -> None:
    client = ApiClient(alice_token, enforce_csrf_checks=True)
    assert client.post_json("workflows/new-product/runs", {"inputs": PRODUCT}).status_code == 202


def test_schema_needs_no_credentials(anonymous: ApiClient) -> None:
    assert anonymous.get_api("schema/").status_code == 200


def test_token_command_issues_lists_and_revokes(alice: User, capsys: Any) -> None:
    call_command("dataflow_token", "alice", "--name", "etl", "--expires-days", "3")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get()
    assert token.key_hash == tokens.digest(raw) and token.name == "etl"
    assert token.expires_at > timezone.now() + dt.timedelta(days=2)
    call_command("dataflow_token", "--list")
    assert token.prefix in capsys.readouterr().out
    call_command("dataflow_token", "--revoke", token.prefix)
    assert ApiToken.objects.get().revoked_at is not None
    with pytest.raises(CommandError, match="No active token"):
        call_command("dataflow_token", "--revoke", token.prefix)
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("dataflow_token", "nobody")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("dataflow_token", "alice", "--expires-days", "0")


def test_token_admin_shows_the_raw_token_once_and_revokes(alice: User) -> None:
    from django.test import Client

    admin_user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/django_dataflow/apitoken/add/", {"user": alice.pk, "name": "from-admin"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="from-admin")
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for text in shown for word in text.split() if word.startswith(tokens.TOKEN_PREFIX))
    assert tokens.digest(raw) == token.key_hash
    assert ApiClient(raw).get_api("nodes/").status_code == 200
    client.post("/admin/django_dataflow/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert ApiClient(raw).get_api("nodes/").status_code == 401
