"""PostgreSQL statements of the bulk nodes: COPY FROM STDIN, staging tables, and database errors
mapped back to the input row, chunk and field.

psycopg 3's cursor.copy() streams rows as they are produced, so the input never has to be in
memory at once; COPY reports a refused row as "COPY <table>, line N", which is how an error names
the row of the input (line 1 is row 0 of the stream).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models

from django_dataflow import sqlwatch
from django_dataflow.exceptions import RowRejected
from django_dataflow.nodes.values import column_name, value_field

#: Column of a staging table holding the row's index in the input.
ROW_COLUMN = "_dataflow_row"
#: Column of a BulkUpdate staging table: bit i set when the row gives a value for update column i.
MASK_COLUMN = "_dataflow_mask"
#: Update columns a bigint mask can describe; models with more fall back to bulk_update.
MAX_MASKED_COLUMNS = 62

_COPY_LINE = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")
_KEY_COLUMNS = re.compile(r"Key \(([^)]*)\)=")
_TYPMOD = re.compile(r"\(.*\)")


def quote(connection: Any, name: str) -> str:
    """A quoted identifier."""
    return connection.ops.quote_name(name)


def copy_rows(
    connection: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
    types: Sequence[str] | None = None,
) -> None:
    """COPY rows (tuples of database values, in columns order) into a table, streaming; in the
    binary format when the column types are given (see binary_types), else in text."""
    sql = f"COPY {quote(connection, table)} ({', '.join(quote(connection, c) for c in columns)}) FROM STDIN"
    if types is not None:
        sql += " WITH (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        if types is not None:
            copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)
    # psycopg's copy() bypasses Django's execute wrappers: the cache must hear of this write.
    sqlwatch.report(connection, [table])


def binary_types(connection: Any, fields: Sequence[models.Field], extra: int = 0) -> list[str] | None:
    """psycopg type names of the columns for a binary COPY (plus `extra` bigint columns), or None.

    Binary COPY measured about 25% faster than text (the server parses no text), but each value
    must suit its column's binary dumper: only Django's own field classes, whose prepared values
    are known, and types psycopg knows qualify; anything else (custom fields, PostGIS) uses text.
    """
    connection.ensure_connection()
    registry = connection.connection.adapters.types
    names = []
    for field in fields:
        target = value_field(field)
        if not type(target).__module__.startswith("django.db.models."):
            return None
        info = registry.get(_TYPMOD.sub("", field.db_type(connection) or "").strip())
        if info is None:
            return None
        names.append(info.name)
    return names + ["int8"] * extra


def create_staging(
    connection: Any, model: type[models.Model], fields: Sequence[models.Field], *, mask: bool = False
) -> str:
    """A temporary table with the types of these columns (typmods too: a too long value is refused
    by the COPY, naming its line), then the update mask (when asked) and the input row index."""
    name = f"dataflow_stage_{uuid.uuid4().hex[:16]}"
    extra = (f", 0::bigint AS {MASK_COLUMN}" if mask else "") + f", 0::bigint AS {ROW_COLUMN}"
    columns = ", ".join(quote(connection, column_name(f)) for f in fields)
    with connection.cursor() as cursor:
        # ON COMMIT DROP: the table never outlives the run, even if the node's own DROP is skipped.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS "
            f"SELECT {columns}{extra} FROM {quote(connection, model._meta.db_table)} WITH NO DATA"
        )
    return name


def drop_staging(connection: Any, name: str) -> None:
    """Drop a staging table now (a workflow with several bulk nodes should not keep them all)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def row_rejected(
    exc: BaseException, fields: Sequence[models.Field], batch_size: int, message: str = ""
) -> RowRejected | None:
    """A database error of a COPY as RowRejected naming the input row, its chunk and the field."""
    diag = getattr(exc, "diag", None)
    if diag is None:
        return None
    found = _COPY_LINE.search(diag.context or "")
    if found is None:
        return None
    index = int(found.group(1)) - 1
    column = found.group(2) or diag.column_name or key_columns(diag.message_detail)
    return RowRejected(
        message or describe(exc), row=index, chunk=index // batch_size + 1,
        field=field_name(fields, column),
    )


def describe(exc: BaseException) -> str:
    """The server's message and detail, without psycopg's CONTEXT lines."""
    diag = getattr(exc, "diag", None)
    if diag is None or not diag.message_primary:
        return str(exc).strip()
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    return f"{diag.message_primary}{detail}"


def field_name(fields: Sequence[models.Field], column: str | None) -> str | None:
    """The field name of a column (or of 'a, b' key columns), or the column itself."""
    if not column:
        return None
    names = []
    for part in column.split(","):
        part = part.strip().strip('"')
        names.append(next((f.name for f in fields if f.column == part), part))
    return ", ".join(names)


def key_columns(detail: str | None) -> str | None:
    """The column list of a 'Key (a, b)=(...)' error detail."""
    found = _KEY_COLUMNS.search(detail or "")
    return found.group(1) if found else None


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, or of the one a Django error wraps."""
    for err in (exc, exc.__cause__):
        state = getattr(err, "sqlstate", None)
        if state:
            return str(state)
    return None
