"""The base class of every generated node and the helpers its operation mixins share."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models
from django.db.models import Q, QuerySet

from django_dataflow import access
from django_dataflow.exceptions import (
    MultipleRecordsFound,
    RecordNotFound,
    WorkflowValidationError,
    valid_names,
)
from django_dataflow.nodes.values import check_storable, jsonable, to_python
from django_dataflow.query import filters
from django_dataflow.workflow.templating import is_template

if TYPE_CHECKING:
    from django_dataflow.nodes.schema import ModelSchema
    from django_dataflow.registry import ModelEntry
    from django_dataflow.runtime.context import RunContext


#: Top-level result keys per operation; operations absent here return a record.
RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "Delete": ("deleted", "id"),
    "List": ("records", "count", "total", "next_cursor"),
    "Count": ("count",),
    "Aggregate": ("results",),
    "BulkCreate": ("created",),
    "BulkUpdate": ("updated",),
    "BulkDelete": ("deleted",),
    "BulkUpsert": ("created", "updated", "unchanged"),
}

#: Result shape per operation, for the generated reference (docs/reference/nodes.md); a test checks
#: that every key of RESULT_KEYS is named here.
RESULT_SHAPES: dict[str, str] = {
    "Create": "The record as stored (JSON-safe: FKs as `<field>_id`, Decimals as strings).",
    "Read": "The record; `null` when nothing matches and `required` is false.",
    "Update": "The record after the update.",
    "Delete": '`{"deleted": 1, "id": <pk>}`.',
    "List": '`{"records": [...], "count": n}`: `count` is the number of records returned; '
    '`total` (all matches) with `with_total`; `next_cursor` when more rows follow.',
    "Count": '`{"count": n}`: every match, paging ignored.',
    "Aggregate": '`{"results": [...]}`: `$group` keys under `_id`, one key per accumulator.',
    "BulkCreate": '`{"created": n}`.',
    "BulkUpdate": '`{"updated": n}`.',
    "BulkDelete": '`{"deleted": n}`: rows of this model, cascaded rows not counted.',
    "BulkUpsert": '`{"created": a, "updated": b}`; with nothing to update (`update_fields: []`), '
    '`unchanged` counts the matched rows left alone.',
}

#: Errors particular to an operation (besides those every node may raise), for the reference.
OPERATION_ERRORS: dict[str, tuple[str, ...]] = {
    "Create": (
        "`NodeExecutionError`: a value the field refuses, or `full_clean()` fails (names the field); "
        "the database refuses a unique or foreign-key constraint (its message names the column).",
    ),
    "Read": (
        "`RecordNotFound`: nothing matches and `required` is true.",
        "`MultipleRecordsFound`: `conditions` match more than one record.",
    ),
    "Update": (
        "`RecordNotFound` / `MultipleRecordsFound`: the lookup must match exactly one record.",
        "`NodeExecutionError`: a refused value or constraint, as for Create.",
    ),
    "Delete": (
        "`RecordNotFound` / `MultipleRecordsFound`: the lookup must match exactly one record.",
        "`NodeExecutionError` caused by Django's `ProtectedError`: a `PROTECT` foreign key refers to it.",
    ),
    "List": (
        "`WorkflowValidationError`: `limit` above `MAX_LIMIT`, an unknown field in `order_by` or "
        "`fields`, a tampered `after` cursor or one made for another order.",
    ),
    "Count": (),
    "Aggregate": (
        "`WorkflowValidationError`: an unknown stage or accumulator, a stage that would need a "
        "subquery, `$first`/`$last` on SQLite.",
    ),
    "BulkCreate": (
        "`NodeExecutionError` caused by `RowRejected` (row index, chunk, field) when the database "
        "refuses a row; more rows than `MAX_BULK_ROWS`.",
    ),
    "BulkUpdate": (
        '`WorkflowValidationError`: an empty filter without `"all": true`; `data` rows without a pk.',
    ),
    "BulkDelete": (
        '`WorkflowValidationError`: an empty filter without `"all": true`.',
        "`NodeExecutionError` caused by Django's `ProtectedError` for protected rows.",
    ),
    "BulkUpsert": (
        "`WorkflowValidationError`: `conflict_on` not backed by one unique constraint.",
        "`NodeExecutionError`: a row with a null conflict key or lacking an updated field; the "
        "same key twice in the input or a row the database refuses (caused by `RowRejected`).",
    ),
}

#: Errors any node may raise, for the reference.
COMMON_ERRORS: tuple[str, ...] = (
    "`WorkflowValidationError` at `build()`: unknown param, field or operator, missing required "
    "param (valid names listed).",
    "`NodeExecutionError` at run time (`.node_id`, `.node_type`, `.run_id`, `.__cause__`); the run "
    "is rolled back. A problem `build()` could not see (a value from `inputs` or a connection) is "
    "its cause, as a `WorkflowValidationError`.",
    "`PermissionDenied` when `user=` lacks the node's Django model permission.",
)


class ModelNode:
    """A node bound to one registered model; subclasses are generated per model and operation."""

    model: ClassVar[type[models.Model]]
    entry: ClassVar[ModelEntry]
    operation: ClassVar[str] = ""
    type_name: ClassVar[str] = ""
    #: Django permission actions ('view', 'add', 'change', 'delete') a user needs to run it.
    permissions: ClassVar[tuple[str, ...]] = ()
    #: Whether the node writes; read-only workflows run without opening a transaction.
    writes: ClassVar[bool] = False
    #: Param name -> description, for the operation's own params.
    PARAMS: ClassVar[dict[str, str]] = {}

    @classmethod
    def schema(cls) -> ModelSchema:
        """Field metadata of the node's model."""
        return cls.entry.schema

    @classmethod
    def param_descriptions(cls) -> dict[str, str]:
        """Every param the node accepts, with a description (the cache's for cacheable reads)."""
        from django_dataflow import cache

        return {**cls.PARAMS, **cache.PARAMS} if cls.operation in cache.CACHEABLE else dict(cls.PARAMS)

    @classmethod
    def result_keys(cls) -> list[str] | None:
        """Top-level keys of the node's result (checked for connections), None if free-form."""
        return list(RESULT_KEYS.get(cls.operation, ())) or cls.schema().record_names

    @classmethod
    def check(cls, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Build-time problems of static params plus param paths that connections will supply."""
        accepted = cls.param_descriptions()
        targets = {path.split(".", 1)[0] for path in connected}
        problems = [
            f"unknown param '{name}' for {cls.type_name}; valid params: {valid_names(accepted)}"
            for name in [*params, *sorted(targets - set(params))]
            if name not in accepted
        ]
        if not problems:
            problems += cls.check_params(params, targets)
            from django_dataflow import cache

            if cls.operation in cache.CACHEABLE:
                problems += cache.param_problems(params)
        return problems

    @classmethod
    def check_params(cls, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Operation-specific build-time checks; overridden by the mixins."""
        return []

    @classmethod
    def run(cls, params: dict[str, Any], ctx: RunContext) -> Any:
        """Execute the node with fully resolved params and return a JSON-safe result."""
        raise NotImplementedError  # abstract: every operation mixin defines run()

    # Shared helpers ----------------------------------------------------------------------------

    @classmethod
    def queryset(cls, ctx: RunContext) -> QuerySet[Any]:
        """The model's default manager on the run's database, limited to the rows the run's user
        may see and change when the model has a row_filter."""
        queryset = cls.model._default_manager.using(ctx.using)
        run_access = access.current()
        return queryset if run_access is None else run_access.scoped(cls.entry, queryset)

    @classmethod
    def filter_q(cls, spec: Any, *, where: str = "filter") -> Q:
        """Translate a filter param with the one shared translator."""
        return filters.translate(cls.entry, spec, where=where)

    @classmethod
    def record(cls, obj: models.Model) -> dict[str, Any]:
        """A model instance as a JSON-safe record, Decimals at their column's scale (as stored)."""
        return {
            f.attname: jsonable(_as_stored(f, getattr(obj, f.attname)))
            for f in cls.schema().concrete_fields
        }

    @classmethod
    def convert_fields(
        cls, values: Any, *, where: str = "", allowed: Mapping[str, models.Field] | None = None
    ) -> dict[str, Any]:
        """Field values -> {attname: python value}, each converted by its field's to_python."""
        if not isinstance(values, Mapping):
            raise WorkflowValidationError(
                f"{where or 'values'} must be an object, not {type(values).__name__}"
            )
        writable = cls.schema().writable if allowed is None else allowed
        converted: dict[str, Any] = {}
        for name, value in values.items():
            field = writable.get(name) if isinstance(name, str) else None
            if field is None:
                raise WorkflowValidationError(
                    f"unknown field {name!r} for {cls.type_name}; valid fields: {valid_names(writable)}"
                )
            value = to_python(field, value, where=where)
            check_storable(field, value, f"{where}{field.name}")
            converted[field.attname] = value
        return converted

    @classmethod
    def check_field_names(cls, values: Any, where: str) -> list[str]:
        """Build-time check that a static dict names only writable fields."""
        if not isinstance(values, Mapping):
            if is_template(values):
                return []
            return [f"{where} must be an object, not {type(values).__name__}"]
        writable = cls.schema().writable
        return [
            f"unknown field {name!r} in {where} of {cls.type_name}; valid fields: {valid_names(writable)}"
            for name in values
            if name not in writable
        ]

    @classmethod
    def check_filter(cls, params: Mapping[str, Any], name: str) -> list[str]:
        """Build-time check of a filter param, as a list of problems."""
        if name not in params:
            return []
        try:
            filters.check(cls.entry, params[name], where=name)
        except WorkflowValidationError as exc:
            return exc.errors
        return []


class SingleRecordMixin:
    """Read/Update/Delete: find one record by 'id' and/or 'conditions'."""

    PARAMS: ClassVar[dict[str, str]] = {
        "id": "Primary key of the record.",
        "conditions": "Filter that must match exactly one record (with 'id', both must hold).",
    }

    @classmethod
    def check_lookup(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Require 'id' or 'conditions' and check the filter."""
        if not ({"id", "conditions"} & (set(params) | connected)):
            return [f"{cls.type_name} needs 'id' or 'conditions'"]
        return cls.check_filter(params, "conditions")

    @classmethod
    def lookup_q(cls: Any, params: Mapping[str, Any]) -> Q:
        """The Q selecting the record from 'id' and 'conditions'."""
        q = Q()
        if "id" in params:
            pk = cls.model._meta.pk
            if params["id"] is None:
                raise WorkflowValidationError("id must not be null")
            q &= Q(pk=to_python(pk, params["id"]))
        if "conditions" in params:
            if not params["conditions"]:
                raise WorkflowValidationError("conditions must not be empty")
            q &= cls.filter_q(params["conditions"], where="conditions")
        if not q:
            raise WorkflowValidationError(f"{cls.type_name} needs 'id' or 'conditions'")
        return q

    @classmethod
    def fetch_one(cls: Any, queryset: QuerySet[Any], params: Mapping[str, Any]) -> Any:
        """Exactly one row of the queryset, or RecordNotFound / MultipleRecordsFound."""
        rows = list(queryset.filter(cls.lookup_q(params))[:2])
        if not rows:
            raise RecordNotFound(f"no {cls.entry.name} matches {_describe(params)}")
        if len(rows) > 1:
            raise MultipleRecordsFound(
                f"more than one {cls.entry.name} matches {_describe(params)}; it must match one"
            )
        return rows[0]


def _as_stored(field: models.Field, value: Any) -> Any:
    """A value as the database returns it, so Create/Update results equal Read's: a Decimal at its
    column's scale ("25.5" in a decimal_places=2 column reads "25.50"), an aware datetime in UTC."""
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        return value.astimezone(dt.UTC)
    places = getattr(field, "decimal_places", None)
    if isinstance(value, decimal.Decimal) and value.is_finite() and isinstance(places, int):
        try:
            return value.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP)
        except decimal.InvalidOperation:
            return value
    return value


def _describe(params: Mapping[str, Any]) -> str:
    parts = [f"{key}={params[key]!r}" for key in ("id", "conditions") if key in params]
    return " and ".join(parts)


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Successive lists of at most size items, consuming any iterable lazily."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
