"""A model's row_filter applied to writes: the rows a node writes must be rows the run's user may
change, before the write (which rows it touches) and after it (where the values put them).

Reads need nothing here: ModelNode.queryset() is already limited to the user's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q
from django.db.models.deletion import Collector

from django_dataflow import access
from django_dataflow.registry import get_entry

if TYPE_CHECKING:
    from django_dataflow.access import Access
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.runtime.context import RunContext

#: Rows per query when checking composite conflict keys (an OR of ANDs: SQLite bounds its depth).
KEY_CHUNK = 100


def _limited(node: type[ModelNode]) -> Access | None:
    """The run's Access when it limits this node's model, else None."""
    run_access = access.current()
    if run_access is None or run_access.scope(node.entry) is None:
        return None
    return run_access


def is_limited(node: type[ModelNode]) -> bool:
    """Whether a row filter limits this node in the current run (a bulk path that cannot return the
    primary keys of what it wrote, such as COPY, must then take the path that can)."""
    return _limited(node) is not None


def check_written(node: type[ModelNode], ctx: RunContext, pks: Iterable[Any]) -> None:
    """PermissionDenied (the run rolls back) if a written row is not one the user may change."""
    run_access = _limited(node)
    if run_access is not None:
        run_access.require_visible(node.entry, ctx.using, pks, what=f"{node.type_name}")


def update_where(node: type[ModelNode], ctx: RunContext, q: Q, values: Mapping[str, Any]) -> int:
    """UPDATE the user's rows matching q; with a row_filter the rows are locked and checked after."""
    run_access = _limited(node)
    if run_access is None:
        return node.queryset(ctx).filter(q).update(**values)
    pks = list(node.queryset(ctx).filter(q).select_for_update().values_list("pk", flat=True))
    base = node.model._base_manager.using(ctx.using)
    updated = 0
    for start in range(0, len(pks), access.CHECK_CHUNK):
        updated += base.filter(pk__in=pks[start : start + access.CHECK_CHUNK]).update(**values)
    run_access.require_visible(node.entry, ctx.using, pks, what=f"{node.type_name}")
    return updated


def bulk_update(
    node: type[ModelNode], ctx: RunContext, objs: list[models.Model], names: list[str], batch_size: int
) -> int:
    """bulk_update of the instances the user may change (others are skipped, like unknown keys)."""
    run_access = _limited(node)
    if run_access is None:
        return node.queryset(ctx).bulk_update(objs, names, batch_size=batch_size)
    visible = run_access.visible_pks(node.entry, ctx.using, [obj.pk for obj in objs])
    mine = [obj for obj in objs if obj.pk in visible]
    updated = node.model._base_manager.using(ctx.using).bulk_update(mine, names, batch_size=batch_size)
    run_access.require_visible(node.entry, ctx.using, [obj.pk for obj in mine], what=f"{node.type_name}")
    return updated


def check_conflicts(
    node: type[ModelNode], ctx: RunContext, fields: Sequence[models.Field], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Upsert: no row with one of these conflict keys may lie outside the user's rows. Called before
    the statement (it must not update a hidden row) and after it (nor insert or move one there)."""
    run_access = _limited(node)
    if run_access is None:
        return
    base = node.model._base_manager.using(ctx.using)
    for q in _key_filters(fields, rows):
        run_access.require_none_hidden(node.entry, base.filter(q), what=f"{node.type_name}")


def check_cascade(node: type[ModelNode], ctx: RunContext, objs: Any) -> None:
    """With a user, a delete that cascades (on_delete=CASCADE) into other models needs their delete
    permission, as the Django admin asks, and may only remove their rows the user may change.

    The rows are collected the way Django's delete() will collect them, before it runs; without
    reverse relations there is nothing to collect.
    """
    run_access = access.current()
    if run_access is None or not node.model._meta.related_objects:
        return
    collector = Collector(using=ctx.using)
    collector.collect(objs)
    cascaded: list[tuple[type[models.Model], Any]] = [
        (model, [obj.pk for obj in instances]) for model, instances in collector.data.items()
    ]
    cascaded += [(queryset.model, queryset) for queryset in collector.fast_deletes]
    what = f"{node.type_name}"
    for model, rows in cascaded:
        if model is not node.model:
            reason = f"deleting {node.entry.label} also deletes {model._meta.label} rows (on_delete), which"
            run_access.require(model, "delete", reason=reason)
        entry = get_entry(model)
        if entry is None or run_access.scope(entry) is None:
            continue
        if isinstance(rows, list):
            run_access.require_visible(entry, ctx.using, rows, what=what)
        else:
            run_access.require_none_hidden(entry, rows, what=what)


def _key_filters(fields: Sequence[models.Field], rows: Sequence[Mapping[str, Any]]) -> Iterable[Q]:
    if len(fields) == 1:
        values = [row[fields[0].attname] for row in rows]
        for start in range(0, len(values), access.CHECK_CHUNK):
            yield Q(**{f"{fields[0].attname}__in": values[start : start + access.CHECK_CHUNK]})
        return
    for start in range(0, len(rows), KEY_CHUNK):
        yield reduce(
            lambda a, b: a | b,
            (Q(**{f.attname: row[f.attname] for f in fields}) for row in rows[start : start + KEY_CHUNK]),
        )
