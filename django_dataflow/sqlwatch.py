"""Watching the SQL every connection executes: the tables a statement writes, and those a read reads.

One execute_wrapper per connection sees every statement Django sends, whoever sends it: nodes,
Model.save()/delete(), bulk_create(), bulk_update(), QuerySet.update()/delete() and raw SQL through
connection.cursor(). psycopg's cursor.copy() does not go through the wrapper, so the COPY paths
report their table with report(). The parsing is deliberately coarse: a false match costs one extra
invalidation, a missed one would cost a stale read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper

from django_dataflow import conf

#: The table after INSERT INTO / UPDATE / DELETE FROM / COPY / TRUNCATE (schema-qualified or not).
_WRITE = re.compile(
    r'\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM|COPY|TRUNCATE(?:\s+TABLE)?)'
    r'\s+(?:ONLY\s+)?((?:"[^"]+"|`[^`]+`|\w+)(?:\.(?:"[^"]+"|\w+))?)',
    re.IGNORECASE,
)
#: Django quotes every table name it writes into SQL ("name"; `name` on MySQL).
_QUOTED = re.compile(r'"([^"]+)"|`([^`]+)`')

_reading: ContextVar[set[str] | None] = ContextVar("django_dataflow_reading", default=None)
_tables: dict[str, tuple[str, ...]] | None = None


def table_models() -> dict[str, tuple[str, ...]]:
    """Lower-cased table name -> labels of the models stored in it (many-to-many tables included)."""
    global _tables
    if _tables is None:
        from django_dataflow.registry import registry

        found: dict[str, list[str]] = {}
        registered = {e.model for e in registry().entries()}
        # The app's own tables (runs, audit entries, the model registry) are read by no node unless
        # registered: skipping them spares a Redis write per recorded run.
        models = [
            m for m in apps.get_models(include_auto_created=True)
            if m._meta.app_label != "django_dataflow" or m in registered
        ]
        models += [m for m in registered if m not in models]
        for model in models:
            labels = found.setdefault(model._meta.db_table.lower(), [])
            if model._meta.label not in labels:
                labels.append(model._meta.label)
        _tables = {table: tuple(labels) for table, labels in found.items()}
    return _tables


def forget_tables() -> None:
    """Drop the table map (models were registered or removed)."""
    global _tables
    _tables = None


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"`').lower()


def written_models(sql: str) -> tuple[str, ...]:
    """Labels of the models whose tables a statement writes (empty for reads)."""
    tables = table_models()
    labels: list[str] = []
    for found in _WRITE.finditer(sql):
        labels.extend(tables.get(_bare(found.group(1)), ()))
    return tuple(dict.fromkeys(labels))


def read_models(tables: Iterable[str]) -> frozenset[str]:
    """Labels of the models stored in these (quoted identifiers of read statements)."""
    known = table_models()
    return frozenset(label for name in tables for label in known.get(name.lower(), ()))


def active() -> bool:
    """Whether anything listens: the result cache is configured (and the settings are valid)."""
    try:
        return conf.cache_settings() is not None
    except ImproperlyConfigured:
        return False


def report(connection: BaseDatabaseWrapper, tables: Iterable[str]) -> None:
    """Report a write that bypassed the wrapper (COPY through psycopg) to the cache."""
    if not active():
        return
    known = table_models()
    labels = tuple(dict.fromkeys(label for t in tables for label in known.get(_bare(t), ())))
    if labels:
        _notify(connection, labels)


def _notify(connection: BaseDatabaseWrapper, labels: tuple[str, ...]) -> None:
    # Imported here: the cache (and prometheus_client) load on the first write, not at start-up.
    from django_dataflow.cache import written

    written(connection, labels)


@contextmanager
def recording() -> Iterator[set[str]]:
    """Collect the quoted identifiers of every statement run in the body (tables read among them)."""
    seen: set[str] = set()
    token = _reading.set(seen)
    try:
        yield seen
    finally:
        _reading.reset(token)


def _watch(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    seen = _reading.get()
    if seen is not None:
        seen.update(a or b for a, b in _QUOTED.findall(sql))
    if sql.lstrip()[:6].upper() == "SELECT" or not active():
        return execute(sql, params, many, context)
    result = execute(sql, params, many, context)
    labels = written_models(sql)
    if labels:
        _notify(context["connection"], labels)
    return result


def install(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Add the watching wrapper to a connection once (a connection_created receiver)."""
    # At the front: connection.execute_wrapper() pops the last wrapper on exit, and a connection
    # may be created inside such a block.
    if _watch not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _watch)
