"""Which failures deserve another attempt of a run, and how long to wait before it."""

from __future__ import annotations

import random
from collections.abc import Iterator

from django.db import InterfaceError, OperationalError

from django_dataflow import conf
from django_dataflow.exceptions import DataflowError, WorkflowValidationError

# SQLSTATEs worth another attempt: serialization failure, deadlock, lock timeout, the server
# shutting the session down (pg_terminate_backend, restarts), too many connections.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exceptions
_BUSY_MAX_DELAY = 5.0
_MAX_DELAY = 60.0
# Both delays reach their cap long before 2**16; the bound keeps a forged message's huge counter
# from making the worker compute an enormous power of two.
_MAX_EXPONENT = 16


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt could succeed: deadlock, serialization failure, lost connection.

    Validation errors, integrity errors and everything a retry would only repeat are not.
    """
    for err in _chain(exc):
        if isinstance(err, WorkflowValidationError):
            return False
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str) and state:
            return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)
        if isinstance(err, InterfaceError):
            return True  # Django's "connection already closed"
        if _psycopg_connection_lost(err):
            return True  # raised by psycopg itself, e.g. during COPY, outside Django's wrapper
        if isinstance(err, OperationalError):
            cause = err.__cause__
            if "database is locked" in str(err).lower():
                return True  # SQLite's busy writer lock after the timeout
            # psycopg reports a dead connection (reset, server gone) without a SQLSTATE.
            if cause is not None and type(cause).__module__.startswith("psycopg"):
                return getattr(cause, "sqlstate", None) is None or is_transient(cause)
            return False
    return False


def _psycopg_connection_lost(err: BaseException) -> bool:
    # psycopg reports a dead connection (reset, server gone) as OperationalError/InterfaceError
    # without a SQLSTATE; errors the server sent carry one and are judged above.
    if not type(err).__module__.startswith("psycopg"):
        return False
    import psycopg

    return isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)) and not getattr(
        err, "sqlstate", None
    )


def retry_delay(retries: int) -> float:
    """Seconds before retry number retries + 1: exponential with jitter, capped at a minute."""
    base = conf.celery_retry_delay() * (2 ** min(max(retries, 0), _MAX_EXPONENT))
    # Jitter spreads the retries of runs that deadlocked with each other.
    return min(_MAX_DELAY, base * random.uniform(0.75, 1.25))


def busy_delay(waits: int) -> float:
    """Seconds a duplicate delivery waits before looking at a run a live attempt holds."""
    return min(_BUSY_MAX_DELAY, 0.25 * (2 ** min(max(waits, 0), _MAX_EXPONENT)))


def message_counter(name: str, value: object) -> int:
    """A retry/wait counter read from a task message: a non-negative int, or a DataflowError naming it."""
    if type(value) is not int or value < 0:
        raise DataflowError(f"task message field {name!r} must be a non-negative integer, not {value!r}")
    return value
