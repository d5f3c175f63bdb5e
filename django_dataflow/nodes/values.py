"""Value conversion in both directions: params -> Python (the field's own to_python) and
Python -> JSON-safe record values."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.models.fields.related import RelatedField
from django.utils import timezone
from django.utils.duration import duration_iso_string

from django_dataflow import bounds, conf
from django_dataflow.exceptions import WorkflowValidationError

# Fields whose value is a structure (dict/list) rather than a scalar.
_STRUCTURED = ("JSONField", "ArrayField", "HStoreField")


#: Text up to this length skips the size check (reading the setting costs more than the check).
_SHORT_TEXT = 65_536
_NUMERIC_TYPES = frozenset(
    {
        "IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
        "PositiveBigIntegerField", "PositiveSmallIntegerField", "AutoField", "BigAutoField",
        "SmallAutoField", "FloatField", "DecimalField",
    }
)
_BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


class InvalidValue(WorkflowValidationError):
    """A value the model field refuses; names the field."""


def value_field(field: models.Field) -> models.Field:
    """The field whose values the column holds: a foreign key's target field, else the field itself."""
    return field.target_field if isinstance(field, RelatedField) else field


def column_name(field: models.Field) -> str:
    """The field's database column (a field without one, like a many-to-many, cannot be written in SQL)."""
    if field.column is None:
        raise TypeError(f"field '{field.name}' of {field.model._meta.label} has no database column")
    return field.column


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The model's field called name (or by its attname) that has a column; anything else is refused."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"'{name}' of {model._meta.label} is not a field with a database column")
    return field


def _messages(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def to_python(field: models.Field, value: Any, *, where: str = "", label: str = "") -> Any:
    """Convert one param value with the field's own to_python, naming the field on failure."""
    label = label or f"{where}{field.name}"
    if value is None:
        return None
    internal = field.get_internal_type()
    if isinstance(value, (dict, list, tuple, set)) and internal not in _STRUCTURED:
        raise InvalidValue(f"field '{label}' expects a single value, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        # JSON cannot carry NaN or Infinity, so no record could return them either.
        raise InvalidValue(f"field '{label}': {value!r} is not a valid value")
    if isinstance(value, bool) and internal in _NUMERIC_TYPES:
        raise InvalidValue(f"field '{label}' takes a number, not {value!r}")
    if isinstance(value, str):
        problem = bounds.text_problem(value)
        if problem:
            raise InvalidValue(f"field '{label}': the text {problem}")
        if len(value) > _SHORT_TEXT and len(value) > conf.max_params_bytes():
            # Bulk rows are not measured as a whole (see bounds.ROW_PARAMS): each value is.
            raise InvalidValue(
                f"field '{label}': the text is longer than DATAFLOW['MAX_PARAMS_BYTES'] "
                f"({conf.max_params_bytes()})"
            )
    elif internal in _STRUCTURED and isinstance(value, (dict, list)):
        try:
            bounds.measure(value, where=f"field '{label}'", limit=conf.max_params_bytes())
        except WorkflowValidationError as exc:
            raise InvalidValue(str(exc)) from None
        _check_finite(value, label)
    if internal == "BooleanField" and isinstance(value, str):
        # Form-like: JSON, CSV and HTML forms say "true"/"false"; the model field alone would not.
        value = _BOOLEAN_WORDS.get(value.strip().lower(), value)
    try:
        converted = field.to_python(value)
    except ValidationError as exc:
        raise InvalidValue(f"field '{label}': {_messages(exc)}") from None
    except (TypeError, ValueError, decimal.InvalidOperation, OverflowError) as exc:
        raise InvalidValue(f"field '{label}': {value!r} is not a valid value ({exc})") from None
    if isinstance(converted, (float, decimal.Decimal)) and not math.isfinite(converted):
        raise InvalidValue(f"field '{label}': {value!r} is not a finite number")
    if (
        isinstance(converted, dt.datetime)
        and settings.USE_TZ
        and timezone.is_naive(converted)
        and isinstance(field, models.DateTimeField)
    ):
        converted = timezone.make_aware(converted)
    return converted


def _check_finite(value: Any, label: str) -> None:
    """Refuse NaN and Infinity anywhere inside a JSON value (jsonb refuses them; JSON has none)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidValue(f"field '{label}': {item!r} is not a JSON number")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


INTEGER_TYPES = _NUMERIC_TYPES - {"FloatField", "DecimalField"}


def check_storable(field: models.Field, value: Any, label: str) -> None:
    """A converted value the column can hold: text within max_length, integers within the column's
    range. Django checks both only in full_clean(); without it PostgreSQL fails mid-statement and
    SQLite silently stores what the field declared impossible."""
    if isinstance(value, str):
        limit = getattr(field, "max_length", None)
        if isinstance(limit, int) and len(value) > limit and field.get_internal_type() != "BinaryField":
            raise InvalidValue(
                f"field '{label}': ensure this value has at most {limit} characters (it has {len(value)})"
            )
        return
    internal = value_field(field).get_internal_type()
    if isinstance(value, int) and not isinstance(value, bool) and internal in INTEGER_TYPES:
        low, high = connections[conf.database()].ops.integer_field_range(internal)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidValue(f"field '{label}': {value} is out of range ({low} to {high})")


def _iso(value: dt.date | dt.time) -> str:
    return value.isoformat()


def _binary(value: bytes | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    dt.datetime: _iso,
    dt.date: _iso,
    dt.time: _iso,
    decimal.Decimal: str,
    uuid.UUID: str,
    dt.timedelta: duration_iso_string,
    bytes: _binary,
    memoryview: _binary,
}
_PLAIN = (str, int, float, bool, type(None))


# How a column's database value becomes JSON-safe; types absent here need nothing.
_COLUMN_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "DecimalField": str,
    "DateTimeField": _iso,
    "DateField": _iso,
    "TimeField": _iso,
    "UUIDField": str,
    "DurationField": duration_iso_string,
    "BinaryField": _binary,
}
# Decoded JSON and these types are JSON-safe as the database driver returns them.
_PLAIN_COLUMNS = frozenset(
    {
        "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
        "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
        "PositiveSmallIntegerField", "CharField", "TextField", "SlugField", "EmailField",
        "URLField", "BooleanField", "FloatField", "JSONField",
    }
)


def records_converter(fields: list[models.Field]) -> Callable[[list[dict[str, Any]]], None]:
    """A function making values() rows of these fields JSON-safe, in place.

    The conversion is chosen once per column, not per value, plain columns are not touched, and
    each column is converted in one loop over the rows: a List of 100 rows would otherwise spend
    more time converting than PostgreSQL answering.
    """
    columns = []
    for field in fields:
        internal = value_field(field).get_internal_type()
        if internal not in _PLAIN_COLUMNS:
            columns.append((field.attname, _COLUMN_CONVERTERS.get(internal, jsonable)))

    def convert(rows: list[dict[str, Any]]) -> None:
        for name, to_json in columns:
            for row in rows:
                value = row[name]
                if value is not None:
                    row[name] = to_json(value)

    return convert


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a value: ISO datetimes, Decimals and UUIDs as strings."""
    if isinstance(value, _PLAIN):
        return value
    converter = _CONVERTERS.get(type(value))
    if converter is not None:
        return converter(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    for kind, conv in _CONVERTERS.items():
        if isinstance(value, kind):
            return conv(value)
    return str(value)
