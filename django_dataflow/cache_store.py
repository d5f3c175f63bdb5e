"""The result cache's storage: Django's cache alias (django-redis in production), guarded.

Every call may fail (Redis down, slow, refusing): the failure is counted in a metric, logged at most
once a minute, and the store stays "down" for a few seconds so that reads go straight to the
database instead of each paying the socket timeout. Generations that could not be bumped are kept
and bumped first when the store comes back, before any cached entry is read again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import BaseCache, caches

from django_dataflow import metrics

logger = logging.getLogger("django_dataflow.cache")

#: Seconds the store is left alone after a failure.
BACKOFF_SECONDS = 5.0
#: Least seconds between two warnings about the cache.
WARN_INTERVAL = 60.0
_MISSING = object()


class Unavailable(Exception):
    """The cache could not be used for this call (the reason was logged and counted)."""


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0
        self.last_warning = -WARN_INTERVAL
        #: alias -> generation keys whose bump failed.
        self.unbumped: dict[str, set[str]] = {}


_state = _State()


def _new_generation() -> int:
    # Random, not a counter: a generation key lost to eviction or a Redis restart comes back with a
    # value no earlier entry was stored under.
    return secrets.randbits(62)


def _failed(operation: str, exc: BaseException) -> Unavailable:
    metrics.cache_error(operation)
    now = time.monotonic()
    with _state.lock:
        _state.down_until = now + BACKOFF_SECONDS
        warn = now - _state.last_warning >= WARN_INTERVAL
        if warn:
            _state.last_warning = now
    if warn:
        logger.warning(
            "django-dataflow result cache unavailable (%s: %s: %s); reading from the database "
            "(next warning in %ds at the earliest)",
            operation, type(exc).__name__, exc, int(WARN_INTERVAL),
        )
    return Unavailable(str(exc))


def _cache(alias: str) -> BaseCache:
    return caches[alias]


def _usable(alias: str) -> None:
    """Raise Unavailable while backing off; first re-bump what earlier failures left."""
    if time.monotonic() < _state.down_until:
        raise Unavailable("backing off after a failure")
    pending = _state.unbumped.get(alias)
    if pending:
        keys = set(pending)
        try:
            _cache(alias).set_many(dict.fromkeys(keys, _new_generation()), timeout=None)
        except Exception as exc:
            raise _failed("bump", exc) from exc
        pending -= keys


def lookup(alias: str, entry_key: str, keys: list[str]) -> tuple[list[int], Any]:
    """The current generation of each key (missing ones are created) and the entry's stored value
    (or the _MISSING marker), in one round trip: one MGET of the entry and the generations."""
    _usable(alias)
    cache = _cache(alias)
    try:
        found = cache.get_many([entry_key, *keys])
        for key in keys:
            if key not in found:
                # add(): of two processes creating one generation, both end up with the first value.
                cache.add(key, _new_generation(), timeout=None)
                found[key] = cache.get(key)
    except Exception as exc:
        raise _failed("lookup", exc) from exc
    return [int(found[key]) for key in keys], found.get(entry_key, _MISSING)


def bump(alias: str, keys: Iterable[str]) -> None:
    """Give each key a new generation; on failure keep them to bump when the cache is back."""
    keys = set(keys)
    if not keys:
        return
    try:
        _usable(alias)
        _cache(alias).set_many(dict.fromkeys(keys, _new_generation()), timeout=None)
    except Unavailable:
        _state.unbumped.setdefault(alias, set()).update(keys)
    except Exception as exc:
        _state.unbumped.setdefault(alias, set()).update(keys)
        _failed("bump", exc)


def missing(value: Any) -> bool:
    """Whether lookup() found no entry."""
    return value is _MISSING


def set_value(alias: str, key: str, value: Any, ttl: int) -> None:
    """Store a value for ttl seconds; a failure is counted and logged, never raised."""
    try:
        _usable(alias)
        _cache(alias).set(key, value, timeout=ttl)
    except Unavailable:
        return
    except Exception as exc:
        _failed("set", exc)


def ping(alias: str) -> None:
    """Raise when the cache does not answer (for the health check; no back-off, no counting)."""
    cache = _cache(alias)
    key = "dataflow:health"
    cache.set(key, 1, timeout=10)
    if cache.get(key) != 1:
        raise RuntimeError(f"cache {alias!r} did not return the value just stored")


def reset() -> None:
    """Forget failures and pending bumps (tests)."""
    with _state.lock:
        _state.down_until = 0.0
        _state.last_warning = -WARN_INTERVAL
        _state.unbumped.clear()
