"""BulkUpsert: INSERT ... ON CONFLICT DO UPDATE with exact created/updated counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.db import connections, models

from django_dataflow.exceptions import RowRejected, WorkflowValidationError, valid_names
from django_dataflow.nodes import scope
from django_dataflow.nodes.bulk import BATCH_HELP, BULK_VALIDATE_HELP, batch_size, check_data
from django_dataflow.nodes.params import flag
from django_dataflow.nodes.pg_bulk import copy_unavailable, copy_upsert
from django_dataflow.nodes.rows import check_deferred_constraints, data_size, instance_chunks
from django_dataflow.nodes.values import column_name
from django_dataflow.runtime.context import RunContext
from django_dataflow.triggers.model_events import UpsertWrites, upsert_writes
from django_dataflow.workflow.templating import is_template


def conflict_fields(node: Any, spec: Any) -> list[models.Field]:
    """The conflict_on fields, refused unless a unique constraint backs exactly that set."""
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, (list, tuple)) or not spec:
        raise WorkflowValidationError("'conflict_on' must be a non-empty list of field names")
    parents = node.model._meta.parents
    if parents:
        # One INSERT ... ON CONFLICT cannot write the parent tables of multi-table inheritance.
        raise WorkflowValidationError(
            f"{node.type_name} cannot upsert {node.entry.label}: it inherits from "
            f"{', '.join(p._meta.label for p in parents)} (multi-table inheritance)"
        )
    schema = node.schema()
    fields = []
    for name in spec:
        field = schema.field_for(name) if isinstance(name, str) else None
        if field is None:
            raise WorkflowValidationError(
                f"conflict_on: unknown field {name!r} on {node.entry.name}; "
                f"valid: {valid_names(schema.record_names)}"
            )
        fields.append(field)
    wanted = frozenset(f.name for f in fields)
    if wanted not in schema.unique_sets and wanted != {node.model._meta.pk.name}:
        backed = [", ".join(sorted(s)) for s in schema.unique_sets] or ["none"]
        raise WorkflowValidationError(
            f"conflict_on ({', '.join(sorted(wanted))}) is not backed by a unique constraint on "
            f"{node.entry.name}; unique field sets: {'; '.join(backed)}"
        )
    return fields


def update_field_list(node: Any, spec: Any) -> list[models.Field] | None:
    """Explicit update_fields as fields (None when not given)."""
    if spec is None:
        return None
    if not isinstance(spec, (list, tuple)):
        raise WorkflowValidationError("'update_fields' must be a list of field names")
    fields = []
    for name in spec:
        field = node.schema().field_for(name) if isinstance(name, str) else None
        if field is None or not field.editable:
            raise WorkflowValidationError(
                f"update_fields: unknown field {name!r} on {node.entry.name}; "
                f"valid: {valid_names(node.schema().writable)}"
            )
        if field.primary_key:
            # Rewriting the key that identifies the row would orphan what refers to it and turn
            # the row into another one under the triggers' and the audit's feet.
            raise WorkflowValidationError(
                f"update_fields: the primary key {name!r} of {node.entry.name} identifies the row "
                "and cannot be updated by an upsert"
            )
        fields.append(field)
    return fields


class UpsertWriter:
    """Writes chunks of instances with one INSERT ... ON CONFLICT statement per sub-batch.

    On PostgreSQL `RETURNING (xmax = 0)` tells inserted from updated rows of this very statement,
    so counts stay exact under concurrent writers. SQLite has one writer at a time, so counting the
    existing keys just before the statement, inside the same transaction, is exact there.
    With writes (a trigger watches the model) each statement's keys are split the same way:
    `RETURNING pk, (xmax = 0)` on PostgreSQL; on SQLite the primary keys of the batch's conflict
    keys read before the statement (updated) and after it (the others were inserted).
    """

    def __init__(
        self,
        model: type[models.Model],
        using: str,
        conflict: Sequence[models.Field],
        updates: Sequence[models.Field],
        writes: UpsertWrites | None = None,
    ) -> None:
        self.model = model
        self.writes = writes
        self.connection = connections[using]
        vendor = self.connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            raise WorkflowValidationError(f"BulkUpsert supports PostgreSQL and SQLite, not {vendor}")
        self.postgres = vendor == "postgresql"
        self.conflict = list(conflict)
        auto_now = [f for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        # No update fields means insert-only (DO NOTHING): existing rows, auto_now included, stay.
        self.updates = list(dict.fromkeys([*updates, *auto_now])) if updates else []

    def write(self, objs: list[models.Model]) -> tuple[int, int]:
        """Upsert the instances; returns (created, updated)."""
        meta = self.model._meta
        with_pk = [obj.pk is not None for obj in objs]
        if any(with_pk) and not all(with_pk):
            raise WorkflowValidationError("rows must all carry the primary key or all omit it")
        fields = [f for f in meta.concrete_fields if all(with_pk) or f is not meta.pk]
        step = max(1, self.connection.ops.bulk_batch_size(fields, objs) if not self.postgres else len(objs))
        created = updated = 0
        for begin in range(0, len(objs), step):
            part = objs[begin : begin + step]
            rows = [[self._prep(f, obj) for f in fields] for obj in part]
            new = self._execute(fields, rows, part)
            created += new
            updated += len(part) - new if self.updates else 0
        return created, updated

    def _prep(self, field: models.Field, obj: models.Model) -> Any:
        return field.get_db_prep_save(field.pre_save(obj, add=True), connection=self.connection)

    def _execute(self, fields: list[models.Field], rows: list[list[Any]], objs: list[Any]) -> int:
        qn = self.connection.ops.quote_name
        table = qn(self.model._meta.db_table)
        columns = ", ".join(qn(column_name(f)) for f in fields)
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        conflict = ", ".join(qn(column_name(f)) for f in self.conflict)
        if self.updates:
            sets = ", ".join(f"{qn(column_name(f))} = EXCLUDED.{qn(column_name(f))}" for f in self.updates)
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(rows))} "
            f"ON CONFLICT ({conflict}) {action}"
        )
        params = [value for row in rows for value in row]
        with self.connection.cursor() as cursor:
            if self.writes is not None:
                inserted, changed = self._keyed(cursor, sql, params, fields, rows)
                self.writes.add(inserted, changed)
                return len(inserted)
            if self.postgres:
                cursor.execute(sql + " RETURNING (xmax = 0)", params)
                return sum(1 for (inserted,) in cursor.fetchall() if inserted)
            existing = self._existing(cursor, "COUNT(*)", fields, rows)
            cursor.execute(sql, params)
            return len(rows) - int(existing[0][0])

    def _keyed(
        self, cursor: Any, sql: str, params: list[Any], fields: list[models.Field], rows: list[list[Any]]
    ) -> tuple[list[Any], list[Any]]:
        """Run the statement; (inserted primary keys, updated primary keys)."""
        pk = self.connection.ops.quote_name(column_name(self.model._meta.pk))
        if self.postgres:
            cursor.execute(f"{sql} RETURNING {pk}, (xmax = 0)", params)
            written = cursor.fetchall()
            return [k for k, new in written if new], [k for k, new in written if not new]
        before = {k for (k,) in self._existing(cursor, pk, fields, rows)}
        cursor.execute(sql, params)
        after = [k for (k,) in self._existing(cursor, pk, fields, rows)]
        # The raw column value (a UUID is hex text on SQLite) becomes the key the ORM would give.
        python = self.model._meta.pk.to_python
        # DO NOTHING leaves the existing rows as they were: only the inserted ones count.
        changed = [python(k) for k in after if k in before] if self.updates else []
        return [python(k) for k in after if k not in before], changed

    def _existing(
        self, cursor: Any, select: str, fields: list[models.Field], rows: list[list[Any]]
    ) -> list[tuple[Any, ...]]:
        """SELECT `select` over the table's rows holding one of these rows' conflict keys."""
        qn = self.connection.ops.quote_name
        positions = [fields.index(f) for f in self.conflict]
        keys = ", ".join(qn(column_name(f)) for f in self.conflict)
        row_sql = "(" + ", ".join(["%s"] * len(positions)) + ")"
        cursor.execute(
            f"SELECT {select} FROM {qn(self.model._meta.db_table)} WHERE ({keys}) IN "
            f"(VALUES {', '.join([row_sql] * len(rows))})",
            [row[p] for row in rows for p in positions],
        )
        return list(cursor.fetchall())


class BulkUpsertMixin:
    """Insert rows or update the existing ones matched on 'conflict_on'."""

    operation: ClassVar[str] = "BulkUpsert"
    permissions: ClassVar[tuple[str, ...]] = ("add", "change")
    writes: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, str]] = {
        "data": "List or iterable of records.",
        "conflict_on": "Field names backed by a unique constraint that identify a row.",
        "update_fields": "Fields to overwrite on existing rows (default: the first row's fields).",
        "batch_size": BATCH_HELP,
        "validate": BULK_VALIDATE_HELP,
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Check data, and conflict_on / update_fields when static."""
        problems = check_data(cls, params, connected)
        if "conflict_on" not in params and "conflict_on" not in connected:
            problems.append(f"{cls.type_name} needs 'conflict_on'")
        for name, check in (("conflict_on", conflict_fields), ("update_fields", update_field_list)):
            if name in params and not is_template(params[name]):
                try:
                    check(cls, params[name])
                except WorkflowValidationError as exc:
                    problems += exc.errors
        return problems

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, int]:
        """COPY + one statement on PostgreSQL; elsewhere chunk by chunk, checks before each statement."""
        conflict = conflict_fields(cls, params.get("conflict_on"))
        explicit = update_field_list(cls, params.get("update_fields"))
        size = batch_size(params)
        validate = flag(params, "validate", False)

        def updates_for(first: Mapping[str, Any]) -> list[models.Field]:
            return explicit if explicit is not None else _default_updates(cls, first, conflict)

        writes = upsert_writes(cls.model)  # None: no trigger watches, no key leaves the database
        # A row filter checks the conflict keys row by row, which the one-statement path cannot.
        if not scope.is_limited(cls) and copy_unavailable(cls, ctx.using, validate=validate) is None:
            result = copy_upsert(
                cls, params["data"], size, ctx, conflict=conflict, updates_for=updates_for, writes=writes
            )
            check_deferred_constraints(cls, ctx.using)
            if writes is not None:
                writes.fire(ctx.using)
            return result
        total = data_size(params["data"])
        writer: UpsertWriter | None = None
        created = updated = done = 0
        seen: dict[Any, int] = {}
        for start, built in instance_chunks(cls, params["data"], size, validate=validate):
            if writer is None:
                writer = UpsertWriter(cls.model, ctx.using, conflict, updates_for(built[0][0]), writes)
            _check_rows(built, start, conflict, writer.updates, seen)
            keys = [values for values, _obj in built]
            scope.check_conflicts(cls, ctx, conflict, keys)
            new, old = writer.write([obj for _values, obj in built])
            scope.check_conflicts(cls, ctx, conflict, keys)
            created += new
            updated += old
            done += len(built)
            ctx.report(done, total)
        check_deferred_constraints(cls, ctx.using)
        if writes is not None:
            writes.fire(ctx.using)
        result = {"created": created, "updated": updated}
        if writer is not None and not writer.updates:
            result["unchanged"] = done - created
        return result


def _default_updates(node: Any, first: Mapping[str, Any], conflict: list[models.Field]) -> list[models.Field]:
    meta = node.model._meta
    keys = {f.attname for f in conflict} | {meta.pk.attname}
    return [node.schema().field_for(a) for a in first if a not in keys]


def _check_rows(
    built: list[tuple[dict[str, Any], models.Model]],
    start: int,
    conflict: list[models.Field],
    updates: list[models.Field],
    seen: dict[Any, int],
) -> None:
    """Every row carries non-null conflict keys and the updated fields; no key twice in the input
    (seen: key -> first row, across chunks), as one PostgreSQL statement could not write it twice."""
    needed = [f for f in updates if not getattr(f, "auto_now", False)]
    for offset, (values, _obj) in enumerate(built):
        index = start + offset
        key = []
        for field in conflict:
            value = values.get(field.attname)
            if value is None:
                raise WorkflowValidationError(
                    f"row {index}: conflict field '{field.name}' is missing or null"
                )
            key.append(repr(value))
        for field in needed:
            if field.attname not in values:
                raise WorkflowValidationError(
                    f"row {index}: lacks '{field.name}', which the upsert updates"
                )
        first = seen.setdefault(tuple(key), index)
        if first != index:
            raise RowRejected(
                f"rows {first} and {index} have the same conflict key ({', '.join(key)}); "
                "a key may appear once in the input",
                field=", ".join(f.name for f in conflict),
            )
