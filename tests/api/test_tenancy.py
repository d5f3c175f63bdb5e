"""The tenant of an API request: django-tenants' routing when installed, None otherwise."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from django.test import RequestFactory

from django_dataflow import tenancy


def request_for(schema: str | None) -> Any:
    request = RequestFactory().get("/dataflow/nodes/")
    if schema is not None:
        request.tenant = types.SimpleNamespace(schema_name=schema)
    return request


def test_without_django_tenants_the_tenant_is_none() -> None:
    assert tenancy.request_tenant(request_for("acme")) is None


@pytest.mark.parametrize(("schema", "expected"), [("acme", "acme"), ("public", None), (None, None)])
def test_with_django_tenants_the_routed_schema_is_the_tenant(
    monkeypatch: pytest.MonkeyPatch, schema: str | None, expected: str | None
) -> None:
    utils = types.ModuleType("django_tenants.utils")
    utils.get_public_schema_name = lambda: "public"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django_tenants", types.ModuleType("django_tenants"))
    monkeypatch.setitem(sys.modules, "django_tenants.utils", utils)
    monkeypatch.setattr(tenancy, "tenants_enabled", lambda: True)
    assert tenancy.request_tenant(request_for(schema)) == expected
