"""System checks of a django-tenants project's settings (E020-E022, W020), on stand-in settings;
tests/tenants/ checks that the real tenants settings pass them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from django_dataflow.checks import ROUTER, TENANT_SYNC_ROUTER, check_tenancy, tenancy_messages

GOOD: dict[str, Any] = {
    "DATABASES": {"default": {"ENGINE": "django_tenants.postgresql_backend"}},
    "SHARED_APPS": ["django_tenants", "django_dataflow"],
    "TENANT_APPS": ["django_dataflow", "shop"],
    "DATABASE_ROUTERS": [ROUTER, TENANT_SYNC_ROUTER],
    "TENANT_LIMIT_SET_CALLS": True,
}


def ids(**changes: Any) -> list[str]:
    return [m.id for m in tenancy_messages(SimpleNamespace(**{**GOOD, **changes}), "default")]


def test_a_complete_setup_has_no_message() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"DATABASES": {"default": {"ENGINE": "django.db.backends.postgresql"}}}, ["django_dataflow.E020"]),
        ({"TENANT_APPS": ["shop"]}, ["django_dataflow.E021"]),
        ({"SHARED_APPS": ["django_tenants"]}, ["django_dataflow.E021"]),
        ({"DATABASE_ROUTERS": [TENANT_SYNC_ROUTER]}, ["django_dataflow.E022"]),
        ({"DATABASE_ROUTERS": [TENANT_SYNC_ROUTER, ROUTER]}, ["django_dataflow.E022"]),
        ({"TENANT_LIMIT_SET_CALLS": False}, ["django_dataflow.W020"]),
    ],
)
def test_each_problem_has_its_id(changes: dict[str, Any], expected: list[str]) -> None:
    assert ids(**changes) == expected


def test_messages_name_what_to_change() -> None:
    [message] = tenancy_messages(SimpleNamespace(**{**GOOD, "TENANT_APPS": ["shop"]}), "default")
    assert "TENANT_APPS" in message.msg
    assert "django_dataflow" in message.hint


def test_nothing_without_django_tenants() -> None:
    assert check_tenancy() == []
