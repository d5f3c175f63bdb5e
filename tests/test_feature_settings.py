"""Settings of the cache, audit and monitoring features: E030-E034, W030, MODELS' 'audit'."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow import conf
from django_dataflow.checks import check_cache_backend, check_settings
from tests.cache_support import dataflow_settings, redis_alias


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    yield
    conf._values.cache_clear()


@pytest.mark.parametrize(
    ("extra", "check_id", "fragment"),
    [
        ({"CACHE": {"ALIAS": "default", "TIMEOUT": 3}}, "E030", "Unknown key DATAFLOW['CACHE']['TIMEOUT']"),
        ({"CACHE": {"TTL": "300"}}, "E030", "DATAFLOW['CACHE']['TTL'] must be int, not str"),
        ({"CACHE": {"TTL": 0}}, "E030", "DATAFLOW['CACHE']['TTL'] must be at least 1"),
        ({"CACHE": {"ALIAS": "nowhere"}}, "E031", "'nowhere', which is not in CACHES"),
        ({"CACHE": "redis"}, "E002", "DATAFLOW['CACHE'] must be dict or NoneType"),
        ({"AUDIT": "sometimes"}, "E032", "DATAFLOW['AUDIT'] must be true, false or \"rows\""),
        ({"AUDIT": 1}, "E002", "DATAFLOW['AUDIT'] must be bool or str"),
        ({"AUDIT_REDACT": ["shop.email"]}, "E033", "refused: ['shop.email']"),
        ({"AUDIT_REDACT": "password"}, "E002", "DATAFLOW['AUDIT_REDACT'] must be list or tuple"),
        ({"SLOW_NODE_SECONDS": 0}, "E003", "DATAFLOW['SLOW_NODE_SECONDS'] must be greater than 0"),
        ({"HEALTH_TIMEOUT": -1}, "E003", "DATAFLOW['HEALTH_TIMEOUT'] must be greater than 0"),
        ({"METRICS_TOKEN": "short"}, "E034", "at least 16 characters"),
        ({"METRICS_TOKEN": 12}, "E002", "DATAFLOW['METRICS_TOKEN'] must be str or NoneType"),
        ({"MODELS": [{"model": "auth.User", "audit": "always"}]}, "E003", "'audit'"),
    ],
)
def test_bad_values_are_check_errors_and_fail_at_first_use(
    extra: dict[str, Any], check_id: str, fragment: str
) -> None:
    with override_settings(DATAFLOW=dataflow_settings(**extra)):
        messages = check_settings()
        assert [m.id for m in messages] == [f"django_dataflow.{check_id}"]
        assert fragment in messages[0].msg
        with pytest.raises(ImproperlyConfigured, match=check_id):
            conf.cache_settings()


def test_good_values_read_through_accessors() -> None:
    extra = {
        "CACHE": {"ALIAS": "default", "TTL": 60},
        "AUDIT": "rows",
        "AUDIT_REDACT": ["password", "shop.Customer.email"],
        "SLOW_NODE_SECONDS": 0.5,
        "METRICS_TOKEN": "a" * 16,
        "HEALTH_TIMEOUT": 3,
    }
    with override_settings(DATAFLOW=dataflow_settings(**extra)):
        assert check_settings() == []
        assert conf.cache_settings() == conf.CacheSettings("default", 60)
        assert conf.audit_default() == "rows"
        assert conf.audit_redact() == {"password", "shop.Customer.email"}
        assert conf.slow_node_seconds() == 0.5
        assert conf.metrics_token() == "a" * 16
        assert conf.health_timeout() == 3.0


def test_defaults_are_off() -> None:
    assert conf.cache_settings() is None
    assert conf.audit_default() is False
    assert conf.slow_node_seconds() is None
    assert conf.metrics_token() is None


def test_cache_defaults_alias_default_and_five_minutes() -> None:
    with override_settings(DATAFLOW=dataflow_settings(CACHE={})):
        assert conf.cache_settings() == conf.CacheSettings("default", 300)


def test_w030_process_local_cache() -> None:
    with override_settings(DATAFLOW=dataflow_settings(CACHE={"ALIAS": "default"})):
        (warning,) = check_cache_backend()
    assert warning.id == "django_dataflow.W030"
    assert "LocMemCache" in warning.msg
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, "redis": redis_alias()}
    with override_settings(CACHES=caches, DATAFLOW=dataflow_settings(CACHE={"ALIAS": "redis"})):
        assert check_cache_backend() == []
    assert check_cache_backend() == []  # no cache configured


def test_models_entry_audit_option_reaches_the_setting() -> None:
    models = [{"model": "auth.User", "exclude_fields": ["password"], "audit": "rows"}]
    with override_settings(DATAFLOW=dataflow_settings(MODELS=models)):
        assert check_settings() == []
        (item,) = conf.model_settings()
    assert item.audit == "rows"
