"""Export: a List node's query (filter, order, fields, permissions, row filters) streamed to a file.

The query is the List node's own (the one filter translator, exclude_fields hidden, the user's
permissions and row filter), without its limit: rows come through QuerySet.iterator() in chunks
(a server-side cursor on PostgreSQL, inside one read-only transaction, so one snapshot), are made
JSON-safe by the node's record converter and written at once; memory holds one chunk.
"""

from __future__ import annotations

import csv
import json
import uuid
from typing import IO, Any

from django.db import transaction

from django_dataflow import access, conf
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.base import chunked
from django_dataflow.nodes.listing import sort_keys
from django_dataflow.query.ordering import may_be_null, projection, sort_expression
from django_dataflow.registry import ModelEntry
from django_dataflow.runtime.context import RunContext
from django_dataflow.runtime.permissions import check_permissions
from django_dataflow.tenancy import tenant_scope
from django_dataflow.transfer.errors import UsageError
from django_dataflow.workflow.builder import WorkflowBuilder
from django_dataflow.workflow.graph import Workflow

EXPORT_FORMATS = ("csv", "jsonl")


def _json_cell(value: Any) -> Any:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _bool_cell(value: Any) -> Any:
    return None if value is None else ("true" if value else "false")


class _CsvWriter:
    """CSV that dataflow_import reads back: empty for NULL (csv writes None so), JSON for
    structures, true/false for booleans; only the columns needing it are touched."""

    def __init__(self, out: IO[str], names: list[str], entry: ModelEntry) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(names)
        self.names = names
        self.cells: list[tuple[str, Any]] = []
        for name in names:
            field = entry.schema.field_for(name)
            internal = field.get_internal_type() if field is not None else ""
            if internal in ("JSONField", "ArrayField", "HStoreField"):
                self.cells.append((name, _json_cell))
            elif internal == "BooleanField":
                self.cells.append((name, _bool_cell))

    def write(self, rows: list[dict[str, Any]]) -> None:
        for name, cell in self.cells:
            for row in rows:
                row[name] = cell(row[name])
        names = self.names
        self.writer.writerows([[row[n] for n in names] for row in rows])


class _JsonlWriter:
    def __init__(self, out: IO[str], names: list[str], entry: ModelEntry) -> None:
        self.out = out

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.out.write("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows))


def prepare(entry: ModelEntry, *, filter: Any = None, order: Any = None, fields: Any = None) -> Workflow:
    """Check filter, order and fields as a List node would at build() (UsageError names the problem)."""
    params = {k: v for k, v in (("filter", filter), ("order_by", order), ("fields", fields)) if v is not None}
    builder = WorkflowBuilder()
    builder.add_node(entry.nodes["List"].type_name, "export", params)
    try:
        return builder.build()
    except WorkflowValidationError as exc:
        raise UsageError("; ".join(exc.errors)) from None


def export(
    entry: ModelEntry, out: IO[str], *, fmt: str = "csv", filter: Any = None, order: Any = None,
    fields: Any = None, user: Any = None, tenant: str | None = None, chunk_size: int | None = None,
    progress: Any = None,
) -> int:
    """Write the matching records to out; returns how many. PermissionDenied without view permission."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    workflow = prepare(entry, filter=filter, order=order, fields=fields)
    node = entry.nodes["List"]
    size = chunk_size or conf.bulk_batch_size()
    ctx = RunContext(run_id=str(uuid.uuid4()), using=conf.database(), tenant=tenant, user=user)
    names = projection(entry, fields)
    with access.active(user), tenant_scope(tenant):
        check_permissions(workflow, user)
        try:
            q = node.filter_q(filter)
        except WorkflowValidationError as exc:
            raise UsageError("; ".join(exc.errors)) from None
        ordering = [
            sort_expression(p.lookup, desc, nullable=may_be_null(p)) for p, desc in sort_keys(entry, order)
        ]
        writer = (_CsvWriter if fmt == "csv" else _JsonlWriter)(out, names, entry)
        convert = entry.schema.records_converter(tuple(names))
        written = 0
        # One transaction: one snapshot, and on PostgreSQL a streaming (not WITH HOLD) cursor.
        with transaction.atomic(using=ctx.using):
            queryset = node.queryset(ctx).filter(q).order_by(*ordering).values(*names)
            for chunk in chunked(queryset.iterator(chunk_size=size), size):
                convert(chunk)
                writer.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress("export", written, None)
    return written
