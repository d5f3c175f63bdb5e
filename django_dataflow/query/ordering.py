"""order_by and fields (projection) params, checked against the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import F, OrderBy

from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.query.paths import FieldPath, resolve

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

_DIRECTIONS = {1: "", -1: "-", "asc": "", "desc": "-"}


def order_items(entry: ModelEntry, spec: Any) -> list[tuple[FieldPath, bool]]:
    """(resolved field, descending) pairs for ["-created_at", "name"] or {"created_at": -1}."""
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    items: list[tuple[str, bool]] = []
    if isinstance(spec, dict):
        for name, direction in spec.items():
            scalar = isinstance(direction, (int, str)) and not isinstance(direction, bool)
            sign = _DIRECTIONS.get(direction) if scalar else None
            if sign is None:
                raise WorkflowValidationError(
                    f"order_by: direction of '{name}' must be 1 or -1, not {direction!r}"
                )
            items.append((name, sign == "-"))
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            if not isinstance(item, str) or not item.lstrip("+-"):
                raise WorkflowValidationError(f"order_by: entries must be field names, not {item!r}")
            items.append((item[1:] if item[0] in "+-" else item, item.startswith("-")))
    else:
        raise WorkflowValidationError(
            f"order_by takes a list or an object, not {type(spec).__name__}"
        )
    return [(resolve(entry, name), descending) for name, descending in items]


def sort_expression(lookup: str, descending: bool, *, nullable: bool = True) -> OrderBy | str:
    """NULL sorts as the largest value on every backend: last ascending, first descending.

    That is PostgreSQL's own order, so its b-tree indexes still serve the sort; SQLite (which
    sorts NULL first) is told explicitly. Columns that cannot be NULL get a plain ASC/DESC.
    """
    if not nullable:
        return f"-{lookup}" if descending else lookup  # the plain form compiles faster
    column = F(lookup)
    return column.desc(nulls_first=True) if descending else column.asc(nulls_last=True)


def may_be_null(path: FieldPath) -> bool:
    """Whether a sort key can be NULL: a nullable column, a JSON key, or any join."""
    return path.field.null or path.is_json or "__" in path.lookup


def order_by(entry: ModelEntry, spec: Any) -> list[OrderBy | str]:
    """Django order_by() arguments for an order_by param."""
    return [
        sort_expression(path.lookup, descending, nullable=may_be_null(path))
        for path, descending in order_items(entry, spec)
    ]


def projection(entry: ModelEntry, spec: Any) -> list[str]:
    """Record keys to return for a 'fields' param (attnames; FKs as '<field>_id')."""
    available = entry.schema.record_names
    if spec is None:
        return list(available)
    if not isinstance(spec, (list, tuple)) or not spec:
        raise WorkflowValidationError("fields takes a non-empty list of field names")
    chosen = []
    for name in spec:
        field = entry.schema.field_for(name) if isinstance(name, str) else None
        if field is None:
            raise WorkflowValidationError(
                f"fields: unknown field {name!r} on {entry.name}; valid: {valid_names(available)}"
            )
        chosen.append(field.attname)
    return chosen
