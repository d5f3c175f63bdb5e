"""Turning bulk 'data' rows into model instances, naming the row and field on bad input."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.db import connections, models

from django_dataflow import bounds, conf
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.base import ModelNode, chunked
from django_dataflow.nodes.values import InvalidValue


def iterate_data(data: Any) -> Iterable[Any]:
    """The rows of a 'data' param: a list, any iterable or a generator (never a dict or string),
    at most DATAFLOW['MAX_BULK_ROWS'] of them (a stream is counted as it is consumed)."""
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise WorkflowValidationError(
            f"'data' must be a list or iterable of objects, not {type(data).__name__}"
        )
    if isinstance(data, (list, tuple)):
        bounds.check_row_count(len(data), where="'data'")
        return data
    return _counted(data, conf.max_bulk_rows())


def _counted(rows: Iterable[Any], limit: int) -> Iterator[Any]:
    for count, row in enumerate(rows, start=1):
        if count > limit:
            bounds.check_row_count(count, where="'data'")
        yield row


def instance_chunks(
    node: type[ModelNode], data: Any, batch_size: int, *, validate: bool
) -> Iterator[tuple[int, list[tuple[dict[str, Any], models.Model]]]]:
    """Yield (index of the chunk's first row, [(converted values, instance)]) per chunk."""
    from django_dataflow.nodes.crud import full_clean

    start = 0
    for number, chunk in enumerate(chunked(iterate_data(data), batch_size), start=1):
        built = []
        for offset, row in enumerate(chunk):
            index = start + offset
            try:
                if not isinstance(row, Mapping):
                    raise InvalidValue(f"must be an object, not {type(row).__name__}")
                values = node.convert_fields(row)
                obj = node.model(**values)
                if validate:
                    full_clean(node, obj)
            except WorkflowValidationError as exc:
                raise InvalidValue(f"row {index} (chunk {number}): {exc}") from None
            built.append((values, obj))
        yield start, built
        start += len(chunk)


def check_deferred_constraints(node: type[ModelNode], using: str) -> None:
    """Check deferred foreign keys now, so a bad key fails this node rather than the commit."""
    if any(f.is_relation and f.concrete for f in node.model._meta.concrete_fields):
        connections[using].check_constraints(table_names=[node.model._meta.db_table])


def data_size(data: Any) -> int | None:
    """len(data) when the input knows it (progress totals), else None."""
    try:
        return len(data)
    except TypeError:
        return None
