"""Audit entries of node writes, inserted in the workflow's own transaction.

An entry is written by the same code path that runs the node (runtime/instrument.py), inside the
run's transaction.atomic(): a rolled-back run leaves none, a committed one always has them. Bulk
operations get one entry per operation (the row count, the filter and values given) unless the
model's audit mode is "rows". Values of exclude_fields and DATAFLOW['AUDIT_REDACT'] are never stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.utils import timezone

from django_dataflow import conf, metrics, redaction, tenancy
from django_dataflow.models import AuditAction, AuditEntry
from django_dataflow.nodes.base import SingleRecordMixin, chunked
from django_dataflow.nodes.rows import iterate_data
from django_dataflow.nodes.values import column_name, concrete_field, jsonable

if TYPE_CHECKING:
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.registry import ModelEntry
    from django_dataflow.runtime.context import RunContext

__all__ = ["AuditEntry", "audited", "mode"]

_ACTIONS = {
    "Create": AuditAction.CREATE,
    "Update": AuditAction.UPDATE,
    "Delete": AuditAction.DELETE,
    "BulkCreate": AuditAction.BULK_CREATE,
    "BulkUpdate": AuditAction.BULK_UPDATE,
    "BulkDelete": AuditAction.BULK_DELETE,
    "BulkUpsert": AuditAction.BULK_UPSERT,
}
#: Primary keys per query when reading the rows a bulk op touches ("rows" mode).
_CHUNK = 2_000


def mode(entry: ModelEntry) -> bool | str:
    """The audit mode of a model: its register(audit=...), else DATAFLOW['AUDIT']."""
    return conf.audit_default() if entry.audit is None else entry.audit


def audited(
    node: type[ModelNode], params: dict[str, Any], ctx: RunContext, run: Callable[[dict[str, Any]], Any]
) -> Any:
    """run(params), then its audit entries, in the same transaction."""
    rows = mode(node.entry) == "rows"
    hidden = redaction.redacted_names(node.entry)
    op = node.operation
    if rows and "data" in params and op.startswith("Bulk"):
        # The rows are read twice (by the node and for their entries): a stream is kept in memory.
        params = {**params, "data": list(iterate_data(params["data"]))}
    before = _before(node, params, ctx, rows)
    result = run(params)
    base = {
        "run_id": ctx.run_id, "node_id": ctx.node_id, "model": node.entry.label, "action": _ACTIONS[op],
        "actor": "" if ctx.user is None else str(getattr(ctx.user, "pk", "") or ""),
        "tenant": tenancy.current_schema(ctx.using) or "",
    }
    made = _entries(node, params, ctx, rows, before, result)
    for fields in made:
        fields["changes"] = redaction.redact(fields.get("changes", {}), hidden)
    _insert(base, made, ctx.using)
    metrics.audit_written(node.entry.label, base["action"], len(made))
    return result


#: Entries above which PostgreSQL gets them by COPY (one round trip, no per-row SQL to build).
_COPY_FROM = 100
_COLUMNS = ("created_at", "run_id", "node_id", "model", "action", "object_pk", "count", "actor", "tenant")


def _insert(base: dict[str, Any], made: list[dict[str, Any]], using: str) -> None:
    """Insert the entries in the run's transaction: bulk_create, or COPY for many on PostgreSQL
    (no INSERT statement to build per 1,000 entries, one stream)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or len(made) < _COPY_FROM:
        AuditEntry.objects.using(using).bulk_create([AuditEntry(**base, **f) for f in made], batch_size=1_000)
        return
    from django_dataflow.nodes.pg_copy import copy_rows

    now = timezone.now()
    columns = [column_name(concrete_field(AuditEntry, name)) for name in (*_COLUMNS, "changes")]
    rows = (
        (now, base["run_id"], base["node_id"], base["model"], base["action"], f.get("object_pk", ""),
         f.get("count", 1), base["actor"], base["tenant"], json.dumps(f["changes"], cls=DjangoJSONEncoder))
        for f in made
    )
    copy_rows(connection, AuditEntry._meta.db_table, columns, rows)


def _before(node: type[ModelNode], params: Mapping[str, Any], ctx: RunContext, rows: bool) -> Any:
    """What the entries need from before the write: the old record, or the touched rows' values."""
    op = node.operation
    if op in ("Update", "Delete"):
        assert issubclass(node, SingleRecordMixin)  # the Update and Delete nodes are single-record nodes
        queryset = node.queryset(ctx)
        # Update locks the row first, as the node itself does: the old values stay the old values.
        obj = node.fetch_one(queryset.select_for_update() if op == "Update" else queryset, params)
        return node.record(obj)
    if not rows or op not in ("BulkUpdate", "BulkDelete"):
        return None
    if "data" in params:
        pk = node.model._meta.pk
        keys = [
            row.get(pk.attname, row.get("pk", row.get("id"))) for row in params["data"]
            if isinstance(row, Mapping)
        ]
        return _by_pk(node, ctx, [k for k in keys if k is not None])
    if op == "BulkDelete" and "ids" in params:
        return _by_pk(node, ctx, list(params["ids"]))
    from django_dataflow.nodes.listing import require_filter

    spec = require_filter(params, node.type_name)
    return _values(node, ctx, node.queryset(ctx).filter(node.filter_q(spec)))


def _by_pk(node: type[ModelNode], ctx: RunContext, keys: list[Any]) -> dict[Any, dict[str, Any]]:
    """_values() of the rows with these primary keys, asked in chunks (SQLite bounds parameters)."""
    found: dict[Any, dict[str, Any]] = {}
    for chunk in chunked(keys, _CHUNK):
        found.update(_values(node, ctx, node.queryset(ctx).filter(pk__in=chunk)))
    return found


def _values(node: type[ModelNode], ctx: RunContext, queryset: Any) -> dict[Any, dict[str, Any]]:
    """pk -> JSON-safe record of every row of the queryset."""
    names = node.schema().record_names
    pk = node.model._meta.pk.attname
    return {row[pk]: {k: jsonable(v) for k, v in row.items()} for row in queryset.values(*names)}


def _entries(
    node: type[ModelNode], params: Mapping[str, Any], ctx: RunContext, rows: bool, before: Any, result: Any
) -> list[dict[str, Any]]:
    op = node.operation
    if op == "Create":
        created = {k: [None, v] for k, v in result.items()}
        return [{"object_pk": str(_pk_of(node, result)), "changes": created}]
    if op == "Update":
        changed = {k: [before.get(k), v] for k, v in result.items() if before.get(k) != v}
        return [{"object_pk": str(_pk_of(node, result)), "changes": changed}]
    if op == "Delete":
        return [{"object_pk": str(result["id"]), "changes": {k: [v, None] for k, v in before.items()}}]
    count = sum(v for k, v in result.items() if k in ("created", "updated", "deleted") and isinstance(v, int))
    if not rows:
        summary = {k: jsonable(params[k]) for k in ("filter", "fields", "ids", "conflict_on") if k in params}
        if "data" in params and isinstance(params["data"], (list, tuple)):
            summary["rows"] = len(params["data"])
        return [{"object_pk": "", "count": count, "changes": summary}]
    if op in ("BulkCreate", "BulkUpsert"):
        pk = node.model._meta.pk.attname
        return [
            {"object_pk": str(row.get(pk, "")) if isinstance(row, Mapping) else "",
             "changes": {k: [None, jsonable(v)] for k, v in row.items()} if isinstance(row, Mapping) else {}}
            for row in params["data"]
        ]
    if op == "BulkDelete":
        return [
            {"object_pk": str(pk), "changes": {k: [v, None] for k, v in old.items()}}
            for pk, old in before.items()
        ]
    # BulkUpdate: the touched rows as they are now, against what they were.
    after = _by_pk(node, ctx, list(before))
    entries = []
    for pk, old in before.items():
        new = after.get(pk, {})
        entries.append(
            {"object_pk": str(pk), "changes": {k: [v, new.get(k)] for k, v in old.items() if new.get(k) != v}}
        )
    return entries


def _pk_of(node: type[ModelNode], record: Mapping[str, Any]) -> Any:
    return record.get(node.model._meta.pk.attname, "")
