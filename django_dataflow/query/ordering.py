"""order_by and fields (projection) params, checked against the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import F, OrderBy

from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.query.paths import resolve

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

_DIRECTIONS = {1: "", -1: "-", "asc": "", "desc": "-"}


def order_by(entry: ModelEntry, spec: Any) -> list[OrderBy]:
    """Django order_by() arguments for ["-created_at", "name"] or {"created_at": -1}.

    NULL sorts as the smallest value on every backend, as in MongoDB: first ascending, last
    descending (PostgreSQL and SQLite disagree by default).
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    items: list[tuple[str, str]] = []
    if isinstance(spec, dict):
        for name, direction in spec.items():
            sign = _DIRECTIONS.get(direction) if not isinstance(direction, bool) else None
            if sign is None:
                raise WorkflowValidationError(
                    f"order_by: direction of '{name}' must be 1 or -1, not {direction!r}"
                )
            items.append((sign, name))
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            if not isinstance(item, str) or not item.lstrip("+-"):
                raise WorkflowValidationError(f"order_by: entries must be field names, not {item!r}")
            sign = "-" if item.startswith("-") else ""
            items.append((sign, item.lstrip("+-") if item[0] in "+-" else item))
    else:
        raise WorkflowValidationError(
            f"order_by takes a list or an object, not {type(spec).__name__}"
        )
    ordering = []
    for sign, name in items:
        column = F(resolve(entry, name).lookup)
        ordering.append(column.desc(nulls_last=True) if sign else column.asc(nulls_first=True))
    return ordering


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
