"""DATAFLOW['STATEMENT_TIMEOUT_MS']: PostgreSQL's statement_timeout for the SQL of one run.

Set with set_config(..., is_local=true), i.e. SET LOCAL, inside the run's transaction: it ends with
the run's transaction and never leaks into the connection's later work. Inside a caller's
transaction (the run is a savepoint) the caller's own value is put back when the run succeeds;
a rolled-back savepoint undoes the setting by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from django_dataflow import conf

#: PostgreSQL's query_canceled: statement_timeout (or a cancel request) stopped the statement.
QUERY_CANCELED = "57014"


def for_run(using: str) -> int | None:
    """The timeout (ms) a run on this database gets: the setting on PostgreSQL, else None."""
    timeout = conf.statement_timeout_ms()
    if timeout is None or connections[using].vendor != "postgresql":
        return None
    return timeout


@contextmanager
def applied(using: str, timeout: int | None) -> Iterator[None]:
    """Apply the timeout for the body, which runs inside an atomic block on using."""
    if timeout is None:
        yield
        return
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
            [f"{timeout}ms"],
        )
        previous = cursor.fetchone()[0]
    yield
    if connection.savepoint_ids and not connection.needs_rollback:
        # A savepoint in the caller's transaction: keep the caller's own timeout after the run.
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def describe(exc: BaseException, using: str) -> str | None:
    """A clear message when exc is a statement cancelled by the run's timeout, else None."""
    timeout = for_run(using)
    if timeout is None:
        return None
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return None
        if getattr(current, "sqlstate", None) == QUERY_CANCELED:
            return (
                f"a statement ran longer than DATAFLOW['STATEMENT_TIMEOUT_MS'] ({timeout} ms) and was "
                f"cancelled; the run was rolled back ({str(current).strip()})"
            )
        current = current.__cause__ or current.__context__
    return None
