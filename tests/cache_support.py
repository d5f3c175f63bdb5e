"""The result cache in tests: settings for a locmem or django-redis cache, and hit counting.

Redis: DATAFLOW_TEST_REDIS_URL (as the Celery tests); every caching() block uses a key prefix of its
own, so tests (whose database is emptied in between, unseen by the cache) and sessions sharing a
Redis database never read each other's entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.test import override_settings
from prometheus_client import REGISTRY

from django_dataflow import cache
from tests.celery_support import REDIS_URL, service_missing

PREFIX = f"dataflow-test-{uuid.uuid4().hex[:8]}"


def redis_alias(url: str = REDIS_URL, **options: Any) -> dict[str, Any]:
    """A django-redis CACHES entry with short socket timeouts (a dead Redis answers quickly)."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": f"{PREFIX}-{uuid.uuid4().hex[:8]}",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, **options},
    }


def require_redis() -> None:
    """Fail (CI=true) or skip when the test Redis does not answer."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")


def dataflow_settings(**extra: Any) -> dict[str, Any]:
    """The testproject's DATAFLOW setting plus extra keys."""
    from django.conf import settings

    return {**settings.DATAFLOW, **extra}


@contextmanager
def caching(backend: str = "locmem", ttl: int = 300, **extra: Any) -> Iterator[str]:
    """Settings with the result cache on the given backend ("locmem" or "redis"); yields the alias."""
    if backend == "redis":
        require_redis()
        caches = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "results": redis_alias(),
        }
    else:
        caches = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "results": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"results-{uuid.uuid4().hex}",
            },
        }
    settings = dataflow_settings(CACHE={"ALIAS": "results", "TTL": ttl}, **extra)
    cache.forget()
    with override_settings(CACHES=caches, DATAFLOW=settings):
        yield "results"
    cache.forget()


def cache_count(result: str, tenant: str = "") -> float:
    """The dataflow_cache_requests_total counter for one result."""
    value = REGISTRY.get_sample_value("dataflow_cache_requests_total", {"result": result, "tenant": tenant})
    return value or 0.0


#: The repository's root (for subprocesses running the testproject).
from pathlib import Path  # noqa: E402

ROOT_DIR = Path(__file__).resolve().parent.parent
