"""The PostgreSQL paths of the bulk nodes: rows converted by RowEncoder and streamed with COPY,
then written by one statement; a refused row is named by its index in the input, chunk and field.

BulkCreate: COPY straight into the table. BulkUpsert: COPY into a staging table, then one
INSERT ... SELECT ... ON CONFLICT DO UPDATE whose RETURNING (xmax = 0) counts created rows exactly
(and, when a trigger watches the model, returns each written key with that flag).
BulkUpdate with data: COPY into a staging table, then one UPDATE ... FROM. BulkDelete with ids:
one DELETE ... WHERE pk = ANY(%s) when Django's collector would not cascade or send signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connections, models, transaction
from django.db.models.deletion import Collector

from django_dataflow.exceptions import RowRejected, WorkflowValidationError
from django_dataflow.nodes.base import ModelNode
from django_dataflow.nodes.encoding import RowEncoder, copy_refusal, encoded_rows, insert_fields
from django_dataflow.nodes.pg_copy import (
    MASK_COLUMN,
    MAX_MASKED_COLUMNS,
    ROW_COLUMN,
    binary_types,
    copy_rows,
    create_staging,
    describe,
    drop_staging,
    field_name,
    key_columns,
    quote,
    row_rejected,
    sqlstate,
)
from django_dataflow.nodes.rows import data_size, iterate_data
from django_dataflow.nodes.values import column_name
from django_dataflow.runtime.context import RunContext

if TYPE_CHECKING:
    from django_dataflow.triggers.model_events import UpsertWrites

_END = object()
_CARDINALITY_VIOLATION = "21000"  # ON CONFLICT DO UPDATE met one key twice in the statement
_NOT_NULL_VIOLATION = "23502"


def copy_unavailable(node: type[ModelNode], using: str, *, validate: bool = False) -> str | None:
    """Why a bulk node falls back to the ORM's batched statements (None: the COPY path applies)."""
    if connections[using].vendor != "postgresql":
        return "COPY is PostgreSQL's (other databases get batched bulk_create/bulk_update)"
    if validate:
        return "validate=true runs full_clean() on an instance per row, which the ORM path builds anyway"
    return copy_refusal(node.model)


def _peek(data: Any) -> tuple[Any, Iterator[Any]]:
    rows = iter(iterate_data(data))
    first = next(rows, _END)
    return first, rows if first is _END else chain([first], rows)


def _gives(row: Any, field: models.Field) -> bool:
    return isinstance(row, Mapping) and (
        row.get(field.attname) is not None or row.get(field.name) is not None
    )


def insert_columns(model: type[models.Model], first: Any) -> list[models.Field]:
    """bulk_create's columns: an auto primary key only when the rows carry it (judged by the first)."""
    pk = model._meta.pk
    fields = insert_fields(model)
    if isinstance(pk, models.AutoField) and not _gives(first, pk):
        fields = [f for f in fields if f is not pk]
    return fields


class _Progress:
    """Counts the rows streamed and reports each chunk to the run's progress sink."""

    def __init__(self, ctx: RunContext, data: Any) -> None:
        self.ctx = ctx
        self.total = data_size(data)
        self.done = 0

    def __call__(self, done: int) -> None:
        self.done = done
        self.ctx.report(done, self.total)


def stream_copy(
    connection: Any, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]],
    fields: list[models.Field], size: int,
) -> None:
    """COPY encoded rows (binary when possible); a row the database refuses becomes RowRejected."""
    import psycopg

    types = binary_types(connection, fields, extra=len(columns) - len(fields))
    try:
        copy_rows(connection, table, columns, rows, types)
    except psycopg.Error as exc:
        rejected = row_rejected(exc, fields, size)
        if rejected is None:
            raise
        raise rejected from exc


# BulkCreate ------------------------------------------------------------------------------------


def copy_create(node: type[ModelNode], data: Any, size: int, ctx: RunContext) -> int:
    """COPY the rows into the node's table; returns the number of rows written."""
    connection = connections[ctx.using]
    first, rows = _peek(data)
    if first is _END:
        return 0
    fields = insert_columns(node.model, first)
    progress = _Progress(ctx, data)
    stream = encoded_rows(RowEncoder(node, connection, fields), rows, size, on_chunk=progress)
    stream_copy(connection, node.model._meta.db_table, [column_name(f) for f in fields], stream, fields, size)
    return progress.done


def copy_create_returning(node: type[ModelNode], data: Any, size: int, ctx: RunContext) -> list[Any]:
    """COPY into a staging table, then one INSERT ... SELECT ... RETURNING: the written primary keys,
    in input order (a "created" trigger needs them; a COPY into the table returns none)."""
    connection = connections[ctx.using]
    model = node.model
    first, rows = _peek(data)
    if first is _END:
        return []
    fields = insert_columns(model, first)
    progress = _Progress(ctx, data)
    stage = create_staging(connection, model, fields)
    encoder = RowEncoder(node, connection, fields)
    stream = encoded_rows(encoder, rows, size, on_chunk=progress, with_index=True)
    stream_copy(connection, stage, [*(column_name(f) for f in fields), ROW_COLUMN], stream, fields, size)
    columns = ", ".join(quote(connection, column_name(f)) for f in fields)
    sql = (
        f"INSERT INTO {quote(connection, model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {stage} ORDER BY {ROW_COLUMN} "
        f"RETURNING {quote(connection, column_name(model._meta.pk))}"
    )
    try:
        with transaction.atomic(using=ctx.using), connection.cursor() as cursor:
            cursor.execute(sql)
            pks = [row[0] for row in cursor.fetchall()]
    except DatabaseError as exc:
        raise _located(connection, exc, stage, fields, size) from exc
    drop_staging(connection, stage)
    return pks


# BulkUpsert ------------------------------------------------------------------------------------


def copy_upsert(
    node: type[ModelNode],
    data: Any,
    size: int,
    ctx: RunContext,
    *,
    conflict: list[models.Field],
    updates_for: Callable[[Mapping[str, Any]], list[models.Field]],
    writes: UpsertWrites | None = None,
) -> dict[str, int]:
    """COPY into a staging table, then one INSERT ... ON CONFLICT; exact created/updated counts.

    updates_for(first row's values by attname) gives the fields existing rows get; none means
    insert-only (DO NOTHING), and auto_now fields are added to a non-empty list, as in UpsertWriter.
    With writes (a trigger watches the model) the statement returns every written key, split into
    writes by (xmax = 0); without, it returns two counts only.
    """
    connection = connections[ctx.using]
    model = node.model
    first, rows = _peek(data)
    if first is _END:
        return {"created": 0, "updated": 0}
    fields = insert_columns(model, first)
    missing = [f for f in conflict if f not in fields]
    if missing:
        raise WorkflowValidationError(f"row 0: conflict field '{missing[0].name}' is missing or null")
    updates = updates_for(_attnames(node, first))
    auto_now = [f for f in fields if getattr(f, "auto_now", False)]
    updates = list(dict.fromkeys([*updates, *auto_now])) if updates else []
    keys = {f.attname: f"conflict field '{f.name}' is missing or null" for f in conflict}
    needed = {f.attname: f"lacks '{f.name}', which the upsert updates" for f in updates if f not in auto_now}
    encoder = RowEncoder(node, connection, fields, required={**keys, **needed}, not_null=keys)
    progress = _Progress(ctx, data)
    stage = create_staging(connection, model, fields)
    stream = encoded_rows(encoder, rows, size, on_chunk=progress, with_index=True)
    stream_copy(connection, stage, [*(column_name(f) for f in fields), ROW_COLUMN], stream, fields, size)
    if not updates:
        # DO NOTHING would skip a repeated key silently; DO UPDATE refuses it (handled below).
        _refuse_duplicates(connection, stage, conflict, size)
    try:
        with transaction.atomic(using=ctx.using):
            sql = _upsert_sql(connection, model, stage, fields, conflict, updates)
            if writes is None:
                created, written = _counted(connection, sql)
            else:
                inserted, changed = _keyed(connection, model, sql)
                created, written = len(inserted), len(inserted) + len(changed)
                writes.add(inserted, changed)  # fired by the node once the whole node succeeded
    except DatabaseError as exc:
        if sqlstate(exc) == _CARDINALITY_VIOLATION:
            _refuse_duplicates(connection, stage, conflict, size)
        raise _located(connection, exc, stage, fields, size) from exc
    drop_staging(connection, stage)
    result = {"created": created, "updated": written - created if updates else 0}
    if not updates:
        result["unchanged"] = progress.done - created
    return result


def _attnames(node: type[ModelNode], row: Any) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        return {}
    schema = node.schema()
    fields = {key: schema.field_for(key) for key in row if isinstance(key, str)}
    return {f.attname: row[key] for key, f in fields.items() if f is not None}


def _upsert_sql(
    connection: Any, model: type[models.Model], stage: str, fields: list[models.Field],
    conflict: list[models.Field], updates: list[models.Field],
) -> str:
    """INSERT ... SELECT ... ON CONFLICT from the staging table, without its RETURNING clause."""
    columns = ", ".join(quote(connection, column_name(f)) for f in fields)
    keys = ", ".join(quote(connection, column_name(f)) for f in conflict)
    if updates:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in (quote(connection, column_name(f)) for f in updates))
        action = f"DO UPDATE SET {sets}"
    else:
        action = "DO NOTHING"
    # ORDER BY the key: concurrent upserts of overlapping keys lock rows in one order, so they
    # wait for each other instead of deadlocking.
    return (
        f"INSERT INTO {quote(connection, model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {stage} ORDER BY {keys} ON CONFLICT ({keys}) {action}"
    )


def _counted(connection: Any, sql: str) -> tuple[int, int]:
    """Run the upsert; (rows inserted, rows written), counted in the database: no key leaves it."""
    # xmax = 0 marks a row version this statement inserted; an updated row carries its lock there.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH written AS ({sql} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FROM written"
        )
        created, written = cursor.fetchone()
    return int(created), int(written)


def _keyed(connection: Any, model: type[models.Model], sql: str) -> tuple[list[Any], list[Any]]:
    """Run the upsert; (inserted primary keys, updated primary keys), for the triggers."""
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {quote(connection, column_name(model._meta.pk))}, (xmax = 0)")
        rows = cursor.fetchall()
    return [pk for pk, inserted in rows if inserted], [pk for pk, inserted in rows if not inserted]


def _refuse_duplicates(connection: Any, stage: str, keys: list[models.Field], size: int) -> None:
    """Name the first two input rows sharing a key (one statement cannot write a row twice)."""
    columns = ", ".join(quote(connection, column_name(f)) for f in keys)
    with connection.cursor() as cursor:
        # Counting distinct keys is several times cheaper than grouping: group only when needed.
        cursor.execute(f"SELECT count(*) > count(DISTINCT ({columns})) FROM {stage}")
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            f"SELECT min({ROW_COLUMN}), (array_agg({ROW_COLUMN} ORDER BY {ROW_COLUMN}))[2], {columns} "
            f"FROM {stage} GROUP BY {columns} HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
        )
        found = cursor.fetchone()
    if found is None:
        return
    first, second, *key = found
    names = ", ".join(f.name for f in keys)
    raise RowRejected(
        f"rows {first} and {second} have the same {'primary' if keys[0].primary_key else 'conflict'} "
        f"key ({', '.join(repr(v) for v in key)}); a key may appear once in the input "
        f"(chunks {first // size + 1} and {second // size + 1})",
        field=names,
    )


def _located(
    connection: Any, exc: DatabaseError, stage: str, fields: list[models.Field], size: int,
    condition: Callable[[models.Field], str] | None = None,
) -> BaseException:
    """The error of the final statement, naming the input row where the staging table can tell."""
    cause = exc.__cause__ or exc
    diag = getattr(cause, "diag", None)
    column = getattr(diag, "column_name", None)
    if sqlstate(exc) == _NOT_NULL_VIOLATION and column:
        field = next((f for f in fields if f.column == column), None)
        if field is not None:
            extra = f" AND {condition(field)}" if condition else ""
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT min({ROW_COLUMN}) FROM {stage} "
                    f"WHERE {quote(connection, column)} IS NULL{extra}"
                )
                (row,) = cursor.fetchone()
            if row is not None:
                return RowRejected(describe(cause), row=row, chunk=row // size + 1, field=field.name)
    if diag is None:
        return exc
    detail_field = field_name(fields, column or key_columns(diag.message_detail))
    return RowRejected(describe(cause), field=detail_field)


# BulkUpdate ------------------------------------------------------------------------------------


def update_columns(node: type[ModelNode]) -> list[models.Field] | None:
    """[pk, writable fields..., auto_now fields...], or None when a bit mask cannot describe them."""
    pk = node.model._meta.pk
    writable = list(dict.fromkeys(f for f in node.schema().writable.values() if f is not pk))
    if len(writable) > MAX_MASKED_COLUMNS:
        return None
    auto_now = [f for f in node.schema().auto_now_fields if f not in writable]
    return [pk, *writable, *auto_now]


def copy_update(
    node: type[ModelNode], rows: Iterable[Any], fields: list[models.Field], size: int, ctx: RunContext,
    data: Any,
) -> int:
    """COPY (pk, values, mask) rows into a staging table, then one UPDATE ... FROM; rows matched."""
    connection = connections[ctx.using]
    model = node.model
    first, stream_rows = _peek(rows)
    if first is _END:
        return 0
    encoder = RowEncoder(node, connection, fields, update=True)
    progress = _Progress(ctx, data)
    stage = create_staging(connection, model, fields, mask=True)
    stream = encoded_rows(encoder, stream_rows, size, on_chunk=progress, with_index=True)
    columns = [*(column_name(f) for f in fields), MASK_COLUMN, ROW_COLUMN]
    stream_copy(connection, stage, columns, stream, fields, size)
    pk = fields[0]
    _refuse_duplicates(connection, stage, [pk], size)
    sets = []
    for bit, field in enumerate(fields[1:], start=1):
        column = quote(connection, column_name(field))
        if getattr(field, "auto_now", False) or encoder.all_mask & (1 << bit):
            sets.append(f"{column} = s.{column}")
        elif encoder.any_mask & (1 << bit):
            sets.append(
                f"{column} = CASE WHEN s.{MASK_COLUMN} & {1 << bit} <> 0 THEN s.{column} ELSE t.{column} END"
            )
    positions = {f: bit for bit, f in enumerate(fields)}
    key = quote(connection, column_name(pk))
    sql = (
        f"UPDATE {quote(connection, model._meta.db_table)} AS t SET {', '.join(sets)} "
        f"FROM {stage} AS s WHERE t.{key} = s.{key}"
    )
    try:
        with transaction.atomic(using=ctx.using), connection.cursor() as cursor:
            cursor.execute(sql)
            updated = cursor.rowcount
    except DatabaseError as exc:
        raise _located(
            connection, exc, stage, fields, size,
            condition=lambda f: f"{MASK_COLUMN} & {1 << positions[f]} <> 0",
        ) from exc
    drop_staging(connection, stage)
    return int(updated)


# BulkDelete ------------------------------------------------------------------------------------


def delete_ids(node: type[ModelNode], ids: list[Any], ctx: RunContext) -> int | None:
    """DELETE ... WHERE pk = ANY(%s): one parameter, whatever the number of ids. None when
    Django's collector must run (cascades, signals): the caller deletes through the ORM then."""
    connection = connections[ctx.using]
    if connection.vendor != "postgresql":
        return None
    queryset = node.queryset(ctx)
    if not Collector(using=ctx.using, origin=queryset).can_fast_delete(queryset):
        return None
    pk = node.model._meta.pk
    values = [pk.get_db_prep_value(value, connection) for value in ids]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(connection, node.model._meta.db_table)} "
            f"WHERE {quote(connection, column_name(pk))} = ANY(%s)",
            [values],
        )
        return int(cursor.rowcount)
