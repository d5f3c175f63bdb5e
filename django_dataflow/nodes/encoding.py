"""Bulk 'data' rows -> tuples of database values, equal to what bulk_create would store.

bulk_create builds an instance per row (defaults filled in by Model.__init__), calls each field's
pre_save(obj, add=True) (auto_now, auto_now_add) and get_db_prep_save(). RowEncoder does the same
per column without building instances: defaults from field.get_default(), auto_now values from
the field's own pre_save() on one instance per chunk, and every value through the field's
to_python (the params convention, see values.to_python) and get_db_prep_save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import models
from django.db.models.expressions import DatabaseDefault

from django_dataflow import conf
from django_dataflow.bounds import text_problem
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.base import ModelNode
from django_dataflow.nodes.values import INTEGER_TYPES, InvalidValue, check_storable, to_python, value_field

# Django's own field classes for which to_python() + get_db_prep_save() give back a value equal to
# one of this exact type, that COPY writes alike (on PostgreSQL an int becomes Int4/Int8, the same
# text): such values skip both calls, which were most of the per-row cost. Subclasses are not
# listed on purpose: a custom field may convert. tests/test_bulk_copy.py checks every entry.
PASSTHROUGH: dict[type[models.Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.SlugField: str,
    models.EmailField: str,
    models.URLField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.AutoField: int,
    models.BigAutoField: int,
    models.SmallAutoField: int,
    models.BooleanField: bool,
    models.FloatField: float,
}

# pre_save() implementations that only do what RowEncoder reproduces (auto_now/auto_now_add);
# any other override (FileField saves the file) needs an instance per row: bulk_create then.
_HARMLESS_PRE_SAVE = frozenset(
    {
        models.Field.pre_save,
        models.DateField.pre_save,
        models.DateTimeField.pre_save,
        models.TimeField.pre_save,
    }
)

_MISSING = object()


def copy_refusal(model: type[models.Model]) -> str | None:
    """Why rows of this model cannot be written without instances (None: they can)."""
    meta = model._meta
    if meta.parents:
        # COPY and INSERT ... SELECT write one table; multi-table inheritance needs parent rows first.
        return "multi-table inheritance writes several tables per row"
    for field in meta.concrete_fields:
        if getattr(field, "generated", False):
            continue
        if type(field).pre_save not in _HARMLESS_PRE_SAVE:
            return f"field '{field.name}' has its own pre_save(), which needs an instance per row"
        if getattr(field, "db_default", models.NOT_PROVIDED) is not models.NOT_PROVIDED:
            # A missing value must become DEFAULT, which COPY cannot say per row.
            return f"field '{field.name}' has a db_default"
    return None


def insert_fields(model: type[models.Model]) -> list[models.Field]:
    """The columns bulk_create writes: concrete, not generated (the auto pk decided per input)."""
    return [f for f in model._meta.concrete_fields if not getattr(f, "generated", False)]


class Column(NamedTuple):
    """How one column's value is produced from a row."""

    field: models.Field
    attname: str
    passthrough: type | None
    auto: bool  # auto_now / auto_now_add: pre_save() decides, whatever the row says
    default: Callable[[], Any] | None  # per-row default (callable model default), else None
    constant: Any  # the prepared default when it is not callable
    decimal: bool  # Django's own DecimalField: a finite Decimal passes through


def _passthrough(field: models.Field) -> type | None:
    target = value_field(field)
    if field.is_relation and type(field) is not models.ForeignKey:
        return None
    return PASSTHROUGH.get(type(target))


class RowEncoder:
    """Turns data rows (dicts of field name -> value) into tuples in `fields` order.

    update=False (BulkCreate, BulkUpsert): a missing value is the field's default, as in
    Model.__init__. update=True (BulkUpdate): fields[0] is the primary key, which every row must
    carry; a missing value stays missing and the tuple ends with a bit mask of the fields given.
    required / not_null map attnames to the message raised when a row lacks them / holds NULL.
    """

    def __init__(
        self,
        node: type[ModelNode],
        connection: Any,
        fields: list[models.Field],
        *,
        update: bool = False,
        required: Mapping[str, str] | None = None,
        not_null: Mapping[str, str] | None = None,
    ) -> None:
        self.node = node
        self.model = node.model
        self.connection = connection
        self.fields = fields
        self.update = update
        self.attnames = frozenset(f.attname for f in fields)
        # Keys a row may use as they are; anything else goes through convert_fields (aliases such
        # as an FK's name, or an error naming the unknown field).
        self.direct = frozenset(self.attnames & set(node.schema().writable))
        self.columns = [self._column(f) for f in fields]
        self.required = dict(required or {})
        positions = {f.attname: i for i, f in enumerate(fields)}
        self.not_null = [(positions[a], message) for a, message in (not_null or {}).items()]
        #: Update mode: OR and AND of the masks of every row encoded so far.
        self.any_mask, self.all_mask = 0, -1
        self._now: dict[str, Any] = {}
        self._plan: list[tuple[str, type | None, Any, Column]] = []
        self._callables = [c for c in self.columns if c.default is not None]
        self._guards = self._value_guards(fields)
        self.start_chunk()

    def _value_guards(
        self, fields: list[models.Field]
    ) -> list[tuple[int, models.Field, int | None, int | None]]:
        """(position, field, low, high) of the text and integer columns the hot loop passes through.

        Text: high is the longest text (max_length, else MAX_PARAMS_BYTES); integers: the column's
        range. A value outside goes through to_python/check_storable, which refuse it naming the
        field in the words every other path uses (NUL, lone surrogates, length, range).
        """
        guards: list[tuple[int, models.Field, int | None, int | None]] = []
        for position, field in enumerate(fields):
            target = value_field(field)
            passthrough = _passthrough(field)
            if passthrough is str:
                limit = getattr(field, "max_length", None) or conf.max_params_bytes()
                guards.append((position, field, 0, int(limit)))
            elif passthrough is int and target.get_internal_type() in INTEGER_TYPES:
                low, high = self.connection.ops.integer_field_range(target.get_internal_type())
                guards.append((position, field, low, high))
        return guards

    def _guard(self, out: tuple[Any, ...] | list[Any]) -> None:
        for position, field, low, high in self._guards:
            value = out[position]
            if type(value) is str:
                clean = value.isascii() or not text_problem(value)
                if high is not None and len(value) <= high and "\x00" not in value and clean:
                    continue
            elif type(value) is int:
                if (low is None or value >= low) and (high is None or value <= high):
                    continue
            else:
                continue
            check_storable(field, to_python(field, value), field.name)  # raises InvalidValue

    def _column(self, field: models.Field) -> Column:
        auto = bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
        default = constant = None
        if not auto and not self.update:
            if field.has_default() and callable(field.default):
                default = field.get_default
            else:
                constant = self._prep(field, field.get_default())
        decimal = type(field) is models.DecimalField
        return Column(field, field.attname, _passthrough(field), auto, default, constant, decimal)

    def _prep(self, field: models.Field, value: Any) -> Any:
        if isinstance(value, DatabaseDefault):  # only from a callable default; refused up front
            raise WorkflowValidationError(f"field '{field.name}': a database default cannot be copied")
        return field.get_db_prep_save(value, connection=self.connection)

    def start_chunk(self) -> None:
        """Take the auto_now/auto_now_add values for the next chunk from the fields' own pre_save()."""
        autos = [c.field for c in self.columns if c.auto]
        if autos or not self._plan:
            probe = self.model()
            self._now = {f.attname: self._prep(f, f.pre_save(probe, add=not self.update)) for f in autos}
            self._plan = [(c.attname, c.passthrough, self._given(c), c) for c in self.columns]

    def _given(self, column: Column) -> Any:
        if column.auto:
            return self._now[column.attname]
        return _MISSING if column.default is not None else column.constant

    def _normalise(self, row: Any) -> Mapping[str, Any]:
        if not isinstance(row, Mapping):
            raise InvalidValue(f"must be an object, not {type(row).__name__}")
        if row.keys() <= self.direct:
            return row
        values = self.node.convert_fields(row)
        extra = values.keys() - self.attnames
        if extra:
            # Only the primary key can get here: it is written for every row or for none.
            raise InvalidValue(
                f"gives '{sorted(extra)[0]}', which the first row did not: rows must all carry "
                "the primary key or all omit it"
            )
        return values

    def encode(self, row: Any) -> tuple[Any, ...]:
        """One row as database values; InvalidValue names the field on bad input."""
        if type(row) is not dict or not row.keys() <= self.direct:
            row = self._normalise(row)
        if self.update:
            return self._encode_update(row)
        if self.required and not self.required.keys() <= row.keys():
            raise InvalidValue(next(m for a, m in self.required.items() if a not in row))
        if self._callables:
            absent = [c for c in self._callables if c.attname not in row]
            if absent:
                # Model.__init__ calls callable defaults once per instance (uuid4, dict, now).
                row = {**row, **{c.attname: c.field.get_default() for c in absent}}
        get = row.get
        slow = self._value
        # The hot loop of every COPY path: one dict lookup and one type check per plain value.
        # `given` is what a missing key yields: the prepared constant default or this chunk's
        # auto_now value, passed through as they are (callable defaults were filled in above).
        out = tuple(
            [
                value if type(value) is fast or value is given or value is None else slow(column, value)
                for attname, fast, given, column in self._plan
                for value in [get(attname, given)]
            ]
        )
        for position, message in self.not_null:
            if out[position] is None:
                raise InvalidValue(message)
        if self._guards:
            self._guard(out)
        return out

    def _value(self, column: Column, value: Any) -> Any:
        """A value the hot loop could not pass through: missing, automatic, or to be converted."""
        field = column.field
        if column.auto:
            return self._now[column.attname]
        if column.decimal and type(value) is Decimal and value.is_finite():
            return value  # what DecimalField.to_python and get_db_prep_save give back on PostgreSQL
        return field.get_db_prep_save(to_python(field, value), connection=self.connection)

    def _encode_update(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        pk = self.columns[0]
        if row.get(pk.attname) is None:
            raise InvalidValue(f"needs its primary key '{pk.field.name}'")
        out = []
        mask = 0
        for bit, column in enumerate(self.columns):
            value = row.get(column.attname, _MISSING)
            if column.auto:
                out.append(self._now[column.attname])
                continue
            if value is _MISSING:
                out.append(None)
                continue
            if bit:
                mask |= 1 << bit
            if value is None or type(value) is column.passthrough:
                out.append(value)
            else:
                out.append(self._value(column, value))
        if not mask:
            raise InvalidValue("names no field to update")
        self.any_mask |= mask
        self.all_mask &= mask
        out.append(mask)
        if self._guards:
            self._guard(out)
        return tuple(out)


def encoded_rows(
    encoder: RowEncoder,
    rows: Iterable[Any],
    batch_size: int,
    *,
    on_chunk: Callable[[int], None] | None = None,
    with_index: bool = False,
    first_index: int = 0,
) -> Iterator[tuple[Any, ...]]:
    """Encode rows lazily; on_chunk(rows so far) after every batch_size rows and at the end.

    A bad row raises InvalidValue naming the row, its chunk and the field, like instance_chunks().
    with_index appends the row's index in the input (staging tables keep it for error messages);
    first_index is the input index of the first row (a slice of a partitioned load).
    """
    index = 0
    encode = encoder.encode
    for row in rows:
        try:
            values = encode(row)
        except WorkflowValidationError as exc:
            where = first_index + index
            raise InvalidValue(f"row {where} (chunk {index // batch_size + 1}): {exc}") from None
        yield (*values, first_index + index) if with_index else values
        index += 1
        if index % batch_size == 0:
            if on_chunk is not None:
                on_chunk(index)
            encoder.start_chunk()
    if on_chunk is not None and index % batch_size:
        on_chunk(index)
