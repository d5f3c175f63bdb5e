"""The result cache of Read, List, Count and Aggregate nodes, invalidated by model generations.

Every model has a generation per (database, tenant schema) in the cache backend; a write to the
model gives it a new one after the transaction commits (sqlwatch sees the write, wherever it came
from). A cached result's key holds the generations of every model its SQL read, joins and dotted
filters included, so a write makes every dependent entry unreachable at once: never stale, nothing
to delete. See docs/caching.md for the reasoning and the limits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from django_dataflow import __version__, access, cache_store, conf, metrics, sqlwatch, tenancy
from django_dataflow.nodes.params import flag, integer, static_problems

if TYPE_CHECKING:
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.runtime.context import RunContext

__all__ = ["CACHEABLE", "PARAMS", "touch"]

#: Operations whose results may be cached.
CACHEABLE = frozenset({"Read", "List", "Count", "Aggregate"})
#: The per-node params every cacheable node accepts.
PARAMS = {
    "cache": "Use the result cache for this node (default true when DATAFLOW['CACHE'] is set).",
    "cache_ttl": "Seconds this node's cached result lives (default DATAFLOW['CACHE']['TTL']).",
}
#: Query shapes whose models are known: (base key) -> labels. Bounded; relearned after a clear.
_DEPS: dict[str, frozenset[str]] = {}
_DEPS_MAX = 4096
_settings_key: tuple[int, str] = (-1, "")


def touch(model: type[models.Model] | str, *, using: str | None = None) -> None:
    """Report a write the cache cannot see (another program, a database trigger, a raw psycopg
    cursor): the model's cached results are invalidated when the current transaction commits."""
    label = model if isinstance(model, str) else model._meta.label
    written(connections[using or conf.database()], (label,))


# Writes -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Pending:
    """Generation keys written in the connection's current transaction, bumped on commit."""

    alias: str
    keys: set[str] = field(default_factory=set)
    #: (schema, label) pairs, for the reads of the same transaction.
    written: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self) -> None:
        cache_store.bump(self.alias, self.keys)


def written(connection: BaseDatabaseWrapper, labels: tuple[str, ...]) -> None:
    """These models were written on the connection: bump their generations after the commit."""
    settings = conf.cache_settings()
    if settings is None:
        return
    schema = tenancy.current_schema(connection.alias) or ""
    keys = {generation_key(connection.alias, schema, label) for label in labels}
    if not connection.in_atomic_block:
        # Autocommit: the statement has committed. (Manual transactions get the bump now; the
        # commit could come later, which is why they are not a supported way to write.)
        cache_store.bump(settings.alias, keys)
        return
    pending = _pending(connection)
    if pending is None:
        pending = _Pending(settings.alias)
        connection._dataflow_pending = pending  # type: ignore[attr-defined]
        transaction.on_commit(pending, using=connection.alias, robust=True)
    pending.keys |= keys
    pending.written |= {(schema, label) for label in labels}


def _pending(connection: BaseDatabaseWrapper) -> _Pending | None:
    """The current transaction's pending bumps: present while its on_commit callback is queued
    (a rollback, or the savepoint rollback that dropped the callback, clears them)."""
    pending = getattr(connection, "_dataflow_pending", None)
    if pending is None or not connection.in_atomic_block:
        return None
    # django-stubs types run_on_commit entries as (sids, func); Django appends (sids, func, robust).
    if any(callback is pending for _sids, callback, _robust in connection.run_on_commit):  # type: ignore[misc]
        return pending
    return None


def generation_key(alias: str, schema: str, label: str) -> str:
    """The cache key of a model's generation in one database and tenant schema."""
    return f"dataflow:gen:{_database_id(alias)}:{schema or '-'}:{label.lower()}"


def _database_id(alias: str) -> str:
    """The same for every process using the same database, whatever alias it gives it."""
    info = connections[alias].settings_dict
    where = f"{info.get('ENGINE')}|{info.get('HOST')}|{info.get('PORT')}|{info.get('NAME')}"
    found = _DATABASE_IDS.get(where)
    if found is None:
        found = _DATABASE_IDS[where] = hashlib.sha1(where.encode(), usedforsecurity=False).hexdigest()[:12]
    return found


_DATABASE_IDS: dict[str, str] = {}


# Reads --------------------------------------------------------------------------------------------


def param_problems(params: Mapping[str, Any]) -> list[str]:
    """Build-time checks of 'cache' and 'cache_ttl'."""
    return static_problems(params, {"cache": lambda p: flag(p, "cache", True), "cache_ttl": _ttl})


def _ttl(params: Mapping[str, Any]) -> int:
    return integer(params, "cache_ttl", 0, minimum=0, maximum=30 * 86400, limit_name="30 days")


def read_through(
    node: type[ModelNode], params: dict[str, Any], ctx: RunContext, *, dynamic: bool,
    run: Callable[[dict[str, Any]], Any],
) -> Any:
    """run(params) answered from the cache when a current entry exists; stored when it may be."""
    enabled = flag(params, "cache", True)
    ttl = _ttl(params) if params.get("cache_ttl") is not None else None
    if "cache" in params or "cache_ttl" in params:
        params = {k: v for k, v in params.items() if k not in PARAMS}
    settings = conf.cache_settings()
    if settings is None or not enabled or ttl == 0:
        return run(params)
    schema = tenancy.current_schema(ctx.using) or ""
    run_access = access.current()
    # A user's run with params from inputs or connections had its permissions checked only as
    # the node built its query; an entry must not skip that check.
    base = None if run_access is not None and dynamic else _base_key(node, params, ctx, schema)
    if base is None:
        metrics.cache_request("bypass", schema)
        return run(params)
    # Until a run has shown which models the SQL reads, guess the node's own: right for every
    # query without joins, so those are stored on their first run.
    deps = _DEPS.get(base) or frozenset({node.entry.label})
    if not _shareable(deps, run_access) or _written_here(ctx, schema, deps):
        metrics.cache_request("bypass", schema)
        return _learn(base, run, params)
    labels = sorted(deps)
    # One slot per query shape, holding the generations its result was computed under: a hit
    # needs one round trip (the slot and the current generations in one MGET).
    key = "dataflow:r:" + base
    try:
        found, stored = cache_store.lookup(
            settings.alias, key, [generation_key(ctx.using, schema, label) for label in labels]
        )
    except cache_store.Unavailable:
        metrics.cache_request("error", schema)
        return run(params)
    current = list(zip(labels, found, strict=True))
    if not cache_store.missing(stored) and isinstance(stored, tuple) and stored[0] == current:
        metrics.cache_request("hit", schema)
        return stored[1]
    metrics.cache_request("miss", schema)
    with sqlwatch.recording() as seen:
        result = run(params)
    read = sqlwatch.read_models(seen)
    if read <= deps:
        # Stored under the generations read before the query ran: a write committed meanwhile
        # has bumped them, so this entry can only be too fresh, never stale.
        cache_store.set_value(settings.alias, key, (current, result), settings.ttl if ttl is None else ttl)
    if base not in _DEPS or not read <= deps:
        _remember(base, deps | read)
    return result


def _learn(base: str, run: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> Any:
    """Run uncached, recording the models the SQL read for the next run of the same shape."""
    with sqlwatch.recording() as seen:
        result = run(params)
    _remember(base, _DEPS.get(base, frozenset()) | sqlwatch.read_models(seen))
    return result


def _remember(base: str, labels: frozenset[str]) -> None:
    if len(_DEPS) >= _DEPS_MAX:
        _DEPS.clear()
    _DEPS[base] = labels


def _shareable(deps: Iterable[str], run_access: access.Access | None) -> bool:
    """Results of a user's run may be shared unless a row filter shapes them for that user."""
    if run_access is None:
        return True
    from django_dataflow.registry import get_entry

    return not any((entry := get_entry(label)) is not None and entry.row_filter for label in deps)


def _written_here(ctx: RunContext, schema: str, deps: frozenset[str]) -> bool:
    """Whether the open transaction wrote one of these models (its reads must see its writes)."""
    pending = _pending(connections[ctx.using])
    return pending is not None and any((schema, label) in pending.written for label in deps)


def _base_key(node: type[ModelNode], params: dict[str, Any], ctx: RunContext, schema: str) -> str | None:
    """Everything a result depends on except the generations, hashed; None when params are not JSON."""
    try:
        text = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
    entry = node.entry
    return _digest([
        node.type_name, entry.label, sorted(entry.exclude_fields), text, _database_id(ctx.using),
        schema, timezone.get_current_timezone_name(), _settings_digest(),
    ])


def _settings_digest() -> str:
    """The DATAFLOW setting (limits shape results) and this package's version, hashed once."""
    global _settings_key
    generation = conf.generation()
    if _settings_key[0] != generation:
        raw = conf.raw_settings() or {}
        _settings_key = (generation, _digest([__version__, json.dumps(raw, sort_keys=True, default=repr)]))
    return _settings_key[1]


def _digest(parts: list[Any]) -> str:
    text = json.dumps(parts, separators=(",", ":"), default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def forget() -> None:
    """Forget learned query shapes and cache failures (tests)."""
    _DEPS.clear()
    cache_store.reset()
