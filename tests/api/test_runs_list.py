"""GET runs/: who sees which runs, the filters, keyset paging and its refusals."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dataflow.api.listing import PARAMS
from django_dataflow.api.serializers import run_json
from django_dataflow.models import ApiToken, WorkflowRun
from tests.api.conftest import BASE, ApiClient, grant, served_document

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def make_run(user: User | None, minutes: int, **fields: Any) -> WorkflowRun:
    """A recorded run of `user` created `minutes` after T0 (created_at is auto_now_add, so set after)."""
    fields = {"status": "succeeded", "runtime": "celery", "inputs": {"name": "Lamp"},
              "results": {"p": {"id": 1}}, **fields}
    run = WorkflowRun.objects.create(workflow={"nodes": []}, user_id=str(user.pk) if user else "", **fields)
    WorkflowRun.objects.filter(pk=run.pk).update(created_at=T0 + dt.timedelta(minutes=minutes))
    run.refresh_from_db()
    return run


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [run["run_id"] for run in response.json()["runs"]]


def client_of(user: User) -> ApiClient:
    return ApiClient(ApiToken.issue(user, "t")[1])


def test_own_runs_newest_first_as_summaries(api: ApiClient, alice: User, bob: User) -> None:
    old, middle = make_run(alice, 1), make_run(alice, 2)
    new = make_run(alice, 3, status="failed", error="boom")
    make_run(bob, 4)
    make_run(None, 5)  # a scheduled run nobody submitted
    response = api.get_api("runs/")
    assert ids(response) == [str(new.run_id), str(middle.run_id), str(old.run_id)]
    body = response.json()
    assert body["next"] is None
    first = body["runs"][0]
    # The summary is the detail less its payloads.
    detail = run_json(new)
    assert "inputs" not in first and "results" not in first
    assert first == {k: v for k, v in detail.items() if k not in ("inputs", "results")}
    assert first["error"]["message"] == "boom" and first["links"]["self"] == f"{BASE}/runs/{new.run_id}"
    # The trailing-slash-less alias lists too.
    assert ids(api.get(f"{BASE}/runs")) == ids(response)


def test_view_all_permission_lists_every_run_of_the_tenant_only(alice: User, bob: User) -> None:
    mine, theirs, nobodys = make_run(bob, 1), make_run(alice, 2), make_run(None, 3)
    make_run(alice, 4, tenant="acme")  # another tenant's run is never listed here
    bob_api = client_of(bob)
    assert ids(bob_api.get_api("runs/")) == [str(mine.run_id)]
    grant(bob, "django_dataflow.view_workflowrun")
    assert ids(bob_api.get_api("runs/")) == [str(r.run_id) for r in (nobodys, theirs, mine)]


def test_filters_by_status_and_definition(api: ApiClient, alice: User) -> None:
    failed = make_run(alice, 1, status="failed", definition="nightly")
    cancelled = make_run(alice, 2, status="cancelled")
    pending = make_run(alice, 3, status="pending", definition="nightly")
    make_run(alice, 4, status="succeeded", definition="nightly")
    expected = [str(cancelled.run_id), str(failed.run_id)]
    assert ids(api.get_api("runs/?status=failed&status=cancelled")) == expected
    assert ids(api.get_api("runs/?status=failed,%20cancelled")) == expected
    assert ids(api.get_api("runs/?definition=nightly&status=pending,failed")) == [
        str(pending.run_id), str(failed.run_id)]
    assert ids(api.get_api("runs/?definition=other")) == []


def test_cursor_pages_have_no_duplicates_or_gaps_when_runs_share_a_created_at(
    api: ApiClient, alice: User
) -> None:
    runs = [make_run(alice, 1), make_run(alice, 9)] + [make_run(alice, 5) for _ in range(5)]
    make_run(alice, 6, status="failed")  # filtered out on every page
    expected = [str(r.run_id) for r in sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)]
    seen: list[str] = []
    path: str | None = f"{BASE}/runs/?status=succeeded&limit=2"
    pages = 0
    while path is not None:
        response = api.get(path)
        seen += ids(response)
        path = response.json()["next"]
        pages += 1
        if pages == 2:  # a run arriving meanwhile is newer than the cursor: later pages do not show it
            make_run(alice, 10)
    assert seen == expected and pages == 4
    assert len(set(seen)) == len(seen)


def test_a_page_costs_the_same_queries_whatever_its_size(api: ApiClient, alice: User) -> None:
    for minute in range(4):
        make_run(alice, minute)
    api.get_api("runs/?limit=1")  # the token's last_used_at is written on the first request only
    counts = []
    for limit in (1, 4):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(api.get_api(f"runs/?limit={limit}"))) == limit
        counts.append(len(queries))
        assert not any('"inputs"' in q["sql"] for q in queries.captured_queries if "workflowrun" in q["sql"])
    assert counts[0] == counts[1]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("query", "param", "named"), [
    ("wait=1", "wait", "unknown query parameters ['wait']"),
    ("page=2&offset=4", "offset", "unknown query parameters ['offset', 'page']"),
    ("status=done", "status", "'done' is not a run status"),
    ("status=failed,done", "status", "'done'"),
    ("status=", "status", "'' is not a run status"),
    ("definition=", "definition", "must name a workflow definition"),
    ("definition=a&definition=b", "definition", "once, not 2 times"),
    ("limit=0", "limit", "from 1 to 200, not '0'"),
    ("limit=201", "limit", "not '201'"),
    ("limit=-1", "limit", "not '-1'"),
    ("limit=1.5", "limit", "not '1.5'"),
    ("limit=ten", "limit", "not 'ten'"),
    ("limit=1&limit=2", "limit", "once"),
    ("cursor=not*base64", "cursor", "not a cursor this API gave out"),
    (f"cursor={_cursor('2026-01-01T00:00:00+00:00')}", "cursor", "not a cursor"),
    (f"cursor={_cursor('yesterday|' + str(uuid.uuid4()))}", "cursor", "not a cursor"),
    (f"cursor={_cursor('2026-01-01T00:00:00+00:00|not-a-uuid')}", "cursor", "not a cursor"),
    (f"cursor={_cursor('2026-01-01T00:00:00|' + str(uuid.uuid4()))}", "cursor", "not a cursor"),  # naive
])
def test_bad_query_parameters_are_400_naming_the_parameter(
    api: ApiClient, alice: User, unchanged_db: Any, query: str, param: str, named: str
) -> None:
    response = api.get_api(f"runs/?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "BadRequest" and error["details"]["param"] == param
    assert named in error["message"]


def test_listing_needs_authentication(anonymous: ApiClient, alice: User) -> None:
    make_run(alice, 1)
    response = anonymous.get_api("runs/")
    assert response.status_code == 401 and response.json()["error"]["type"] == "NotAuthenticated"


def test_the_documented_parameters_are_the_ones_accepted() -> None:
    operation = served_document()["paths"]["/runs/"]["get"]
    assert [p["name"] for p in operation["parameters"]] == list(PARAMS)
