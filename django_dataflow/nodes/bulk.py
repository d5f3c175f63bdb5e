"""BulkCreate, BulkUpdate and BulkDelete: set-based writes over many rows in one run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from django_dataflow import bounds, conf
from django_dataflow.exceptions import RowRejected, WorkflowValidationError
from django_dataflow.nodes import scope
from django_dataflow.nodes.listing import empty_filter_problems, require_filter
from django_dataflow.nodes.params import flag, integer, static_problems
from django_dataflow.nodes.pg_bulk import (
    copy_create,
    copy_create_returning,
    copy_unavailable,
    copy_update,
    delete_ids,
    update_columns,
)
from django_dataflow.nodes.rows import (
    check_deferred_constraints,
    data_size,
    instance_chunks,
    iterate_data,
)
from django_dataflow.nodes.values import to_python
from django_dataflow.runtime.context import RunContext
from django_dataflow.triggers.model_events import BulkWrites, bulk_writes

BATCH_HELP = "Rows per chunk (default DATAFLOW['BULK_BATCH_SIZE'])."
BULK_VALIDATE_HELP = "Run full_clean() on every row (default false: fields still convert each value)."


def batch_size(params: Mapping[str, Any]) -> int:
    """The batch_size param, bounded."""
    return integer(params, "batch_size", conf.bulk_batch_size(), minimum=1, maximum=1_000_000)


def check_data(
    node: Any, params: Mapping[str, Any], connected: set[str], *, aliases: frozenset[str] = frozenset()
) -> list[str]:
    """'data' given or connected; a static list must hold objects naming writable fields (or aliases)."""
    if "data" not in params and "data" not in connected:
        return [f"{node.type_name} needs 'data'"]
    data = params.get("data")
    problems = static_problems(
        params,
        {"batch_size": batch_size, "validate": lambda p: flag(p, "validate", False)},
    )
    if isinstance(data, list):
        seen: set[str] = set()
        for index, row in enumerate(data):
            if not isinstance(row, Mapping):
                problems.append(f"data row {index} must be an object, not {type(row).__name__}")
                continue
            names = [n for n in row if n not in seen and n not in aliases]
            seen.update(row)
            problems += node.check_field_names({n: None for n in names}, f"data row {index}")
    return problems


class BulkCreateMixin:
    """Insert many rows in chunks; the result is {"created": n}."""

    operation: ClassVar[str] = "BulkCreate"
    permissions: ClassVar[tuple[str, ...]] = ("add",)
    writes: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, str]] = {
        "data": "List or iterable of records (field name -> value).",
        "batch_size": BATCH_HELP,
        "validate": BULK_VALIDATE_HELP,
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Check data and batch size."""
        return check_data(cls, params, connected)

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, int]:
        """COPY on PostgreSQL; elsewhere (see copy_unavailable) bulk_create per chunk, streaming."""
        size = batch_size(params)
        validate = flag(params, "validate", False)
        # A row filter must see the written primary keys, which COPY does not return.
        writes = bulk_writes(cls.model, "created")
        if not scope.is_limited(cls) and copy_unavailable(cls, ctx.using, validate=validate) is None:
            if writes is None:
                created = copy_create(cls, params["data"], size, ctx)
            else:  # a "created" trigger needs the keys: COPY to a staging table, INSERT ... RETURNING
                writes.add(copy_create_returning(cls, params["data"], size, ctx))
                created = len(writes.pks)
            check_deferred_constraints(cls, ctx.using)
            if writes is not None:
                writes.fire(ctx.using)
            return {"created": created}
        total = data_size(params["data"])
        created = 0
        manager = cls.queryset(ctx)
        chunks = instance_chunks(cls, params["data"], size, validate=validate)
        for _start, built in chunks:
            manager.bulk_create([obj for _values, obj in built], batch_size=size)
            scope.check_written(cls, ctx, [obj.pk for _values, obj in built])
            if writes is not None:
                writes.add(obj.pk for _values, obj in built)
            created += len(built)
            ctx.report(created, total)
        check_deferred_constraints(cls, ctx.using)
        if writes is not None:
            writes.fire(ctx.using)
        return {"created": created}


class BulkUpdateMixin:
    """Update rows matching a filter with 'fields', or rows given in 'data' by primary key."""

    operation: ClassVar[str] = "BulkUpdate"
    permissions: ClassVar[tuple[str, ...]] = ("change",)
    writes: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, str]] = {
        "filter": "Rows to update (an empty filter needs \"all\": true).",
        "fields": "Field values to set on every matching row.",
        "all": "Allow an empty filter to update every row.",
        "data": "Records carrying their primary key, each updated with its own values.",
        "batch_size": BATCH_HELP,
        "validate": BULK_VALIDATE_HELP,
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Either data, or fields with a filter."""
        given = set(params) | connected
        if "data" in given:
            if "fields" in given or "filter" in given:
                return [f"{cls.type_name} takes 'data' or 'filter' + 'fields', not both"]
            # Rows may name their primary key 'pk' as well as by its own name (see _with_pk).
            return check_data(cls, params, connected, aliases=frozenset({"pk"}))
        if "fields" not in given:
            return [f"{cls.type_name} needs 'fields' (with 'filter') or 'data'"]
        problems = cls.check_filter(params, "filter")
        if "fields" in params:
            problems += cls.check_field_names(params["fields"], "fields")
        return problems + empty_filter_problems(cls.type_name, params, connected)

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, int]:
        """One UPDATE for filter mode; bulk_update per chunk and field set for data mode."""
        writes = bulk_writes(cls.model, "updated")
        if "data" in params:
            updated = cls._update_rows(params, ctx, writes)
            if writes is not None:
                writes.fire(ctx.using)
            return {"updated": updated}
        spec = require_filter(params, cls.type_name)
        values = cls.convert_fields(params.get("fields"), where="fields.")
        if not values:
            raise WorkflowValidationError("fields must name at least one field")
        now = timezone.now()
        # A DateField's date is the project's (TIME_ZONE), as date.today() in Django's pre_save();
        # without USE_TZ, now is already naive local time.
        project_zone = timezone.get_default_timezone()
        today = now.date() if timezone.is_naive(now) else timezone.localdate(now, project_zone)
        for field in cls.schema().auto_now_fields:
            is_datetime = field.get_internal_type() == "DateTimeField"
            values.setdefault(field.attname, now if is_datetime else today)
        q = cls.filter_q(spec)
        if writes is not None:
            # QuerySet.update() returns no keys: read them first, locked so they stay the ones updated.
            writes.add(cls.queryset(ctx).filter(q).select_for_update().values_list("pk", flat=True))
        updated = scope.update_where(cls, ctx, q, values)
        check_deferred_constraints(cls, ctx.using)
        if writes is not None:
            writes.fire(ctx.using)
        return {"updated": updated}

    @classmethod
    def _update_rows(cls: Any, params: dict[str, Any], ctx: RunContext, writes: BulkWrites | None) -> int:
        pk = cls.model._meta.pk
        size = batch_size(params)
        validate = flag(params, "validate", False)
        rows = _with_pk(iterate_data(params["data"]), pk.attname)
        if writes is not None:
            rows = _noting_pks(rows, pk, writes)
        columns = update_columns(cls)
        usable = not scope.is_limited(cls) and copy_unavailable(cls, ctx.using, validate=validate) is None
        if usable and columns is not None:
            updated = copy_update(cls, rows, columns, size, ctx, params["data"])
            check_deferred_constraints(cls, ctx.using)
            return updated
        total = data_size(params["data"])
        auto_now = {f.name for f in cls.schema().auto_now_fields}
        updated = done = 0
        seen: dict[Any, int] = {}
        for start, built in instance_chunks(cls, rows, size, validate=validate):
            groups: dict[tuple[str, ...], list[Any]] = defaultdict(list)
            for offset, (values, obj) in enumerate(built):
                if obj.pk is None:
                    raise WorkflowValidationError(f"row {start + offset}: needs its primary key '{pk.name}'")
                # As on PostgreSQL, where one UPDATE cannot apply two rows to one record.
                first = seen.setdefault(obj.pk, start + offset)
                if first != start + offset:
                    raise RowRejected(
                        f"rows {first} and {start + offset} have the same primary key ({obj.pk!r}); "
                        "a key may appear once in the input",
                        field=pk.name,
                    )
                names = tuple(sorted(cls.schema().field_for(a).name for a in values if a != pk.attname))
                if not names:
                    raise WorkflowValidationError(f"row {start + offset}: names no field to update")
                for field in cls.schema().auto_now_fields:
                    field.pre_save(obj, add=False)
                groups[tuple(sorted(set(names) | auto_now))].append(obj)
            for names, objs in groups.items():
                updated += scope.bulk_update(cls, ctx, objs, list(names), size)
            done += len(built)
            ctx.report(done, total)
        check_deferred_constraints(cls, ctx.using)
        return updated


def _noting_pks(rows: Any, pk: Any, writes: BulkWrites) -> Any:
    """Pass rows through, noting each one's primary key for the "updated" trigger."""
    for row in rows:
        if isinstance(row, Mapping) and row.get(pk.attname) is not None:
            try:
                writes.add([pk.to_python(row[pk.attname])])
            except ValidationError:
                pass  # the write itself refuses the key, naming the row
        yield row


def _with_pk(data: Any, attname: str) -> Any:
    """Accept 'id'/'pk' as the primary key name in data rows."""
    for row in data:
        if isinstance(row, Mapping) and attname not in row:
            alias = "pk" if "pk" in row else ("id" if "id" in row else None)
            if alias is not None:
                row = {**{k: v for k, v in row.items() if k != alias}, attname: row[alias]}
        yield row


class BulkDeleteMixin:
    """Delete rows matching a filter, or by 'ids'; the result is {"deleted": n}."""

    operation: ClassVar[str] = "BulkDelete"
    permissions: ClassVar[tuple[str, ...]] = ("delete",)
    writes: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, str]] = {
        "filter": "Rows to delete (an empty filter needs \"all\": true).",
        "ids": "Primary keys of the rows to delete.",
        "all": "Allow an empty filter to delete every row.",
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Refuse an empty filter without 'all' at build time when it is static."""
        if "ids" in params or "ids" in connected:
            return []
        problems = cls.check_filter(params, "filter")
        return problems + empty_filter_problems(cls.type_name, params, connected)

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, int]:
        """QuerySet.delete(), counting this model's rows only (not cascaded ones)."""
        writes = bulk_writes(cls.model, "deleted")
        if "ids" in params:
            ids = params["ids"]
            if not isinstance(ids, list):
                raise WorkflowValidationError(f"'ids' must be a list, not {type(ids).__name__}")
            bounds.check_row_count(len(ids), where="'ids'")
            pk = cls.model._meta.pk
            converted = [to_python(pk, value, where="ids: ") for value in ids]
            # The one-statement delete bypasses the row filter's scoping: only without one.
            deleted = None if scope.is_limited(cls) else delete_ids(cls, converted, ctx)
            if deleted is not None:
                if writes is not None and deleted:
                    writes.add(converted)  # the one statement sends no row signals
                    writes.fire(ctx.using)
                return {"deleted": deleted}
            q = Q(pk__in=converted)
        else:
            q = cls.filter_q(require_filter(params, cls.type_name))
        doomed = cls.queryset(ctx).filter(q)
        scope.check_cascade(cls, ctx, doomed)
        if writes is None:
            _total, per_model = doomed.delete()
        else:
            with writes.collecting():  # QuerySet.delete() sends post_delete per row: gathered
                _total, per_model = doomed.delete()
            writes.fire(ctx.using)
        return {"deleted": per_model.get(cls.model._meta.label, 0)}
