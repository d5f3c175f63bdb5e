"""Input rows -> field values, converted and checked by the model's own fields.

Conversion is the nodes' (ModelNode.convert_fields: the field's to_python, max_length and integer
range checks, naming the field); this module adds what a file needs on top: column mapping, CSV's
empty cells and JSON cells, and NOT NULL, so that a bad row is found, with its line, before the
node sees it (and can be skipped into a reject file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import models

from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.transfer.errors import UsageError

_STRUCTURED = frozenset({"JSONField", "ArrayField", "HStoreField"})


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
        self._plans: dict[tuple[str, ...], list[tuple[str, models.Field | None]]] = {}
        for column, target in self.mapping.items():
            if target and target not in self.schema.writable:
                raise UsageError(
                    f"--map {column}={target}: unknown or read-only field {target!r} of "
                    f"{node.entry.label}; writable fields: {valid_names(self.schema.writable)}"
                )

    def plan(self, keys: tuple[str, ...]) -> list[tuple[str, models.Field | None]]:
        """(column, field or None when ignored) per key; an unknown column raises InvalidRow."""
        plan = self._plans.get(keys)
        if plan is not None:
            return plan
        plan = []
        targets: dict[str, str] = {}
        for key in keys:
            target = self.mapping.get(key, key)
            if not target:
                plan.append((key, None))
                continue
            field = self.schema.writable.get(target)
            if field is None:
                known = self.schema.field_for(target)
                if known is not None:
                    # Read-only (auto_now_add, editable=False): an export's own columns import back.
                    self.ignored.add(key)
                    plan.append((key, None))
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
            plan.append((key, field))
        if len(self._plans) < 64:  # JSON rows may vary; CSV has one key set
            self._plans[keys] = plan
        return plan

    def convert(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """{attname: python value} for one row, or InvalidRow naming the field."""
        given: dict[str, Any] = {}
        for key, field in self.plan(tuple(values)):
            if field is None:
                continue
            value = values[key]
            if self.text_cells:
                if value == "":
                    value = self._empty(field)
                    if value is _OMIT:
                        continue
                elif field.get_internal_type() in _STRUCTURED:
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as exc:
                        message = f"field '{field.name}': not valid JSON ({exc.msg})"
                        raise InvalidRow(message, field.name) from None
            given[field.attname] = value
        try:
            converted = self.node.convert_fields(given)
        except WorkflowValidationError as exc:
            raise InvalidRow(str(exc), _field_in(str(exc))) from None
        for attname, value in converted.items():
            if value is None:
                field = self.schema.field_for(attname)
                if field is not None and not field.null:
                    raise InvalidRow(f"field '{field.name}': this field cannot be null", field.name)
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


def _field_in(message: str) -> str | None:
    """The field a conversion message names ("field 'price': ...")."""
    if message.startswith("field '"):
        return message[7:].split("'", 1)[0]
    return None
