"""Settings and system checks of the HTTP API (ids E040, E041, W040)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_dataflow import checks, conf


@pytest.mark.parametrize("value", ["fast", "0/m", "10/w", "10", "-1/s", "\u0661\u0660/m"])
def test_bad_rate_limits_are_e040(value: str) -> None:
    problems = conf.find_problems({"API_RATE_LIMIT": value})
    assert [p.id for p in problems] == ["django_dataflow.E040"]
    assert repr(value) in problems[0].message


@pytest.mark.parametrize(("value", "parsed"), [("120/m", (120, 60)), ("1/s", (1, 1)), ("5/d", (5, 86400))])
def test_rate_limits_parse(value: str, parsed: tuple[int, int]) -> None:
    with override_settings(DATAFLOW={"API_RATE_LIMIT": value}):
        assert conf.api_rate_limit() == parsed


def test_wrong_types_and_values_of_api_settings_are_refused() -> None:
    assert [p.id for p in conf.find_problems({"API_MAX_WAIT_SECONDS": 0})] == ["django_dataflow.E003"]
    assert [p.id for p in conf.find_problems({"API_MAX_BODY_BYTES": "1MB"})] == ["django_dataflow.E002"]
    assert [p.id for p in conf.find_problems({"API_RATE_LIMIT": 10})] == ["django_dataflow.E002"]


@pytest.mark.parametrize(("backend", "expected"), [
    ("django.core.cache.backends.dummy.DummyCache", ["django_dataflow.E041"]),
    ("django.core.cache.backends.locmem.LocMemCache", ["django_dataflow.W040"]),
    ("django.core.cache.backends.db.DatabaseCache", []),
])
def test_rate_limit_cache_checks(backend: str, expected: list[str]) -> None:
    caches = {"default": {"BACKEND": backend, "LOCATION": "dataflow_cache"}}
    with override_settings(CACHES=caches, DATAFLOW={"API_RATE_LIMIT": "10/m"}):
        assert [m.id for m in checks.check_api_rate_limit_cache()] == expected
    with override_settings(CACHES=caches, DATAFLOW={}):
        assert checks.check_api_rate_limit_cache() == []
