"""Input rows -> field values, converted and checked by the model's own fields.

Conversion is the nodes' (ModelNode.convert_fields: the field's to_python, max_length and integer
range checks, naming the field); this module adds what a file needs on top: column mapping, CSV's
empty cells and JSON cells, and NOT NULL, so that a bad row is found, with its line, before the
node sees it (and can be skipped into a reject file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from django.db import connections, models

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.nodes.encoding import PASSTHROUGH
from django_dataflow.nodes.values import INTEGER_TYPES, check_storable, to_python, value_field
from django_dataflow.transfer.errors import UsageError

_STRUCTURED = frozenset({"JSONField", "ArrayField", "HStoreField"})
#: Text up to this length takes the shortcut; longer text is measured against MAX_PARAMS_BYTES.
_SHORT_TEXT = 65_536


class Column(NamedTuple):
    """How one key of the input rows is read: its field (None: ignored) and converter."""

    key: str
    field: models.Field | None
    convert: Callable[[Any], Any] | None = None
    structured: bool = False


def _converter(field: models.Field) -> Callable[[Any], Any]:
    """The field's conversion (the nodes' to_python + check_storable), with the shortcut the COPY
    encoder takes (encoding.PASSTHROUGH): text for Django's own text fields and integers for its
    integer fields are checked without the general path, which then only names the problem."""
    label = field.name

    def full(value: Any) -> Any:
        converted = to_python(field, value, label=label)
        check_storable(field, converted, label)
        return converted

    target = value_field(field)
    exact = not field.is_relation or type(field) is models.ForeignKey
    kind = PASSTHROUGH.get(type(target)) if exact else None
    if kind is str:
        limit = min(getattr(field, "max_length", None) or _SHORT_TEXT, _SHORT_TEXT)

        def text(value: Any) -> Any:
            if type(value) is str and len(value) <= limit and "\x00" not in value and value.isascii():
                return value
            return full(value)

        return text
    if kind is int and target.get_internal_type() in INTEGER_TYPES:
        low, high = connections[conf.database()].ops.integer_field_range(target.get_internal_type())

        def integer(value: Any) -> Any:
            kind_of = type(value)
            number = value if kind_of is int else None
            if kind_of is str:
                try:
                    number = int(value)  # what IntegerField.to_python does with text
                except ValueError:
                    return full(value)
            if number is not None and (low is None or number >= low) and (high is None or number <= high):
                return number
            return full(value)

        return integer
    return full


class InvalidRow(Exception):
    """A row the model's fields refuse; the message names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """--map col=field pairs; an empty field drops the column."""
    mapping: dict[str, str] = {}
    for pair in pairs or ():
        column, sep, field = pair.partition("=")
        if not sep or not column:
            raise UsageError(f"--map takes COLUMN=FIELD (an empty FIELD ignores the column), not {pair!r}")
        mapping[column] = field.strip()
    return mapping


class RowConverter:
    """Converts the rows of one import for one node class (any node of the model will do)."""

    def __init__(self, node: Any, mapping: Mapping[str, str], *, text_cells: bool) -> None:
        self.node = node
        self.schema = node.schema()
        self.mapping = dict(mapping)
        self.text_cells = text_cells  # CSV: every value is text; "" may mean NULL
        self.ignored: set[str] = set()
        self._plans: dict[tuple[str, ...], list[Column]] = {}
        self._columns: dict[str, Column] = {}
        for column, target in self.mapping.items():
            if target and target not in self.schema.writable:
                raise UsageError(
                    f"--map {column}={target}: unknown or read-only field {target!r} of "
                    f"{node.entry.label}; writable fields: {valid_names(self.schema.writable)}"
                )

    def plan(self, keys: tuple[str, ...]) -> list[Column]:
        """How each key is read (None field: ignored); an unknown column raises InvalidRow."""
        plan = self._plans.get(keys)
        if plan is not None:
            return plan
        plan = []
        targets: dict[str, str] = {}
        for key in keys:
            target = self.mapping.get(key, key)
            if not target:
                plan.append(Column(key, None))
                continue
            field = self.schema.writable.get(target)
            if field is None:
                known = self.schema.field_for(target)
                if known is not None:
                    # Read-only (auto_now_add, editable=False): an export's own columns import back.
                    self.ignored.add(key)
                    plan.append(Column(key, None))
                    continue
                raise InvalidRow(
                    f"unknown column {key!r} (not a field of {self.node.entry.label}; map it with "
                    f"--map {key}=FIELD or drop it with --map {key}=); writable fields: "
                    f"{valid_names(self.schema.writable)}",
                    field=key,
                )
            if field.attname in targets:
                raise InvalidRow(
                    f"columns {targets[field.attname]!r} and {key!r} both set field '{field.name}'",
                    field=field.name,
                )
            targets[field.attname] = key
            plan.append(self._column(key, field))
        if len(self._plans) < 64:  # JSON rows may vary; CSV has one key set
            self._plans[keys] = plan
        return plan

    def _column(self, key: str, field: models.Field) -> Column:
        column = self._columns.get(key)
        if column is None or column.field is not field:
            structured = field.get_internal_type() in _STRUCTURED
            column = self._columns[key] = Column(key, field, _converter(field), structured)
        return column

    def convert(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """{attname: python value} for one row, or InvalidRow naming the field."""
        converted: dict[str, Any] = {}
        for key, field, to_value, structured in self.plan(tuple(values)):
            if field is None:
                continue
            assert to_value is not None  # _column gives every column with a field its converter
            value = values[key]
            if self.text_cells:
                if value == "":
                    value = self._empty(field)
                    if value is _OMIT:
                        continue
                elif structured:
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as exc:
                        message = f"field '{field.name}': not valid JSON ({exc.msg})"
                        raise InvalidRow(message, field.name) from None
            try:
                value = to_value(value)
            except WorkflowValidationError as exc:
                raise InvalidRow(str(exc), field.name) from None
            if value is None and not field.null:
                raise InvalidRow(f"field '{field.name}': this field cannot be null", field.name)
            converted[field.attname] = value
        return converted

    @staticmethod
    def _empty(field: models.Field) -> Any:
        """What an empty CSV cell means: NULL where allowed, the default, else the empty text."""
        if field.null:
            return None
        if field.primary_key:
            return _OMIT  # an automatic key is assigned by the database
        if field.has_default():
            return field.get_default()
        try:
            field.to_python("")  # text fields take the empty text; numbers, dates... need a value
        except Exception:
            message = f"field '{field.name}': a value is required (the cell is empty)"
            raise InvalidRow(message, field.name) from None
        return ""


_OMIT = object()
