"""List and Count: filtered, ordered, paged reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.db.models import F, QuerySet
from django.db.models.manager import BaseManager
from django.utils import timezone

from django_dataflow import access, conf
from django_dataflow.exceptions import PermissionDenied, WorkflowValidationError
from django_dataflow.nodes.params import flag, integer, static_problems
from django_dataflow.query import paging
from django_dataflow.query.ordering import (
    may_be_null,
    order_by,
    order_items,
    projection,
    sort_expression,
)
from django_dataflow.query.paths import FieldPath, resolve_pk
from django_dataflow.runtime.context import RunContext
from django_dataflow.workflow.templating import is_template


def _limit(params: Mapping[str, Any]) -> int:
    return integer(
        params, "limit", conf.default_limit(), minimum=0, maximum=conf.max_limit(),
        limit_name="DATAFLOW['MAX_LIMIT']",
    )


#: The largest OFFSET a database takes (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


def _offset(params: Mapping[str, Any]) -> int:
    return integer(params, "offset", 0, minimum=0, maximum=MAX_OFFSET, limit_name="the largest offset")


class ListMixin:
    """Records matching a filter, ordered and paged; the result holds records and their count."""

    operation: ClassVar[str] = "List"
    permissions: ClassVar[tuple[str, ...]] = ("view",)
    PARAMS: ClassVar[dict[str, str]] = {
        "filter": "MongoDB-style filter.",
        "order_by": 'List like ["-created_at", "name"] or object like {"created_at": -1}.',
        "limit": "Most records to return (default DATAFLOW['DEFAULT_LIMIT']).",
        "offset": "Records to skip.",
        "fields": "Field names to return (default: all visible fields).",
        "with_total": "Also return 'total', the count of all matches.",
        "after": "The 'next_cursor' of the previous page: keyset paging that stays fast deep down.",
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Check filter, ordering, projection and paging params known at build time."""
        problems = cls.check_filter(params, "filter")
        problems += static_problems(
            params,
            {
                "order_by": lambda p: order_by(cls.entry, p["order_by"]),
                "fields": lambda p: projection(cls.entry, p["fields"]),
                "limit": _limit,
                "offset": _offset,
                "with_total": lambda p: flag(p, "with_total", False),
                "after": lambda p: None
                if p["after"] is None
                else paging.read_cursor(
                    cls.entry.label, p["after"], sort_keys(cls.entry, p.get("order_by"))
                ),
            },
        )
        return problems

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one SELECT (two with with_total); 'next_cursor' is set when more rows follow."""
        limit, offset = _limit(params), _offset(params)
        names = projection(cls.entry, params.get("fields"))
        keys = sort_keys(cls.entry, params.get("order_by"))
        # Sort keys outside the projection ride along as annotations, for the cursor.
        key_names = [_key_name(path, names, i) for i, (path, _) in enumerate(keys)]
        aliases = {k: F(p.lookup) for k, (p, _) in zip(key_names, keys, strict=True) if k not in names}

        def build() -> QuerySet[Any]:
            return (
                cls.queryset(ctx)
                .filter(cls.filter_q(params.get("filter")))
                .order_by(*(sort_expression(p.lookup, desc, nullable=may_be_null(p)) for p, desc in keys))
                .values(*names, **aliases)
            )

        shape = (tuple(names), tuple((p.lookup, desc, may_be_null(p)) for p, desc in keys))
        page = _built(cls, params.get("filter"), shape, ctx, build)
        if params.get("after") is not None:
            page = page.filter(paging.after(keys, paging.read_cursor(cls.entry.label, params["after"], keys)))
        rows = list(page[offset : offset + limit + 1]) if limit else []
        more = len(rows) > limit
        rows = rows[:limit]
        result: dict[str, Any] = {"records": rows, "count": len(rows)}
        if more:
            last = [rows[-1][k] for k in key_names]
            result["next_cursor"] = paging.make_cursor(cls.entry.label, keys, last)
        for alias in aliases:
            for row in rows:
                del row[alias]
        cls.schema().records_converter(tuple(names))(rows)
        if flag(params, "with_total", False):
            result["total"] = cls.queryset(ctx).filter(cls.filter_q(params.get("filter"))).count()
        return result


#: Built List querysets (filter, ordering, projection) by model, params, database, time zone and
#: settings generation. Django rebuilds all three on every call otherwise: tens of microseconds a
#: page, a fifth of a small indexed page's time. Evaluated only through clones, never itself.
_BUILT: dict[tuple[Any, ...], tuple[Any, QuerySet[Any]]] = {}
_BUILT_MAX = 512


def _built(
    cls: Any, spec: Any, shape: tuple[Any, ...], ctx: RunContext, build: Callable[[], QuerySet[Any]]
) -> QuerySet[Any]:
    """build(), or a clone of the queryset an earlier run with the same filter and shape built."""
    # Not kept: a run for a user (permissions and row filters shape it), and a default manager
    # whose get_queryset() is its own (it may read the clock or request state on every call).
    if access.current() is not None or type(cls.model._default_manager).get_queryset is not _PLAIN:
        return build()
    try:
        text = json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return build()  # not JSON: not cacheable
    key = (cls.entry.label, text, shape, ctx.using, timezone.get_current_timezone_name(), conf.generation())
    hit = _BUILT.get(key)
    if hit is not None and hit[0] is cls.entry:
        return hit[1].all()  # a clone of the cached queryset (all() is _chain())
    queryset = build()
    if len(_BUILT) >= _BUILT_MAX:
        _BUILT.clear()
    _BUILT[key] = (cls.entry, queryset)
    return queryset.all()


_PLAIN = BaseManager.get_queryset


def _key_name(path: FieldPath, names: list[str], index: int) -> str:
    """The values() key holding a sort key: its projected column, else an alias."""
    if path.lookup == "pk":
        pk = path.field.attname
        return pk if pk in names else f"_dataflow_key{index}"
    return path.lookup if path.lookup in names else f"_dataflow_key{index}"


def sort_keys(entry: Any, spec: Any) -> list[tuple[FieldPath, bool]]:
    """The List's order: order_by, else the model's Meta.ordering (when nodes may use its fields),
    then the primary key as the final tie-breaker, so pages are deterministic and a cursor names
    exactly one position."""
    keys = order_items(entry, spec)
    if not keys:
        ordering = entry.model._meta.ordering
        if all(isinstance(o, str) and o.lstrip("-") != "?" for o in ordering):
            try:
                keys = order_items(entry, [o.replace("__", ".") for o in ordering])
            except (WorkflowValidationError, PermissionDenied):
                # Meta.ordering through a hidden field, an unregistered model or one this user may
                # not read: sorting by it would reveal it, so such a List is ordered by pk alone.
                keys = []
    if not any(path.lookup in ("pk", entry.model._meta.pk.name) for path, _ in keys):
        keys.append((resolve_pk(entry), False))
    return keys


class CountMixin:
    """The number of records matching a filter."""

    operation: ClassVar[str] = "Count"
    permissions: ClassVar[tuple[str, ...]] = ("view",)
    PARAMS: ClassVar[dict[str, str]] = {"filter": "MongoDB-style filter."}

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Check the filter."""
        return cls.check_filter(params, "filter")

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, int]:
        """One SELECT COUNT(*)."""
        return {"count": cls.queryset(ctx).filter(cls.filter_q(params.get("filter"))).count()}


def require_filter(params: Mapping[str, Any], node: str) -> Any:
    """The filter param, refusing an empty one unless 'all' is true."""
    spec = params.get("filter")
    if is_template(spec):
        return spec
    if not spec and not flag(params, "all", False):
        raise WorkflowValidationError(
            f"{node} with an empty filter would touch every row; pass \"all\": true to mean it"
        )
    return spec


def empty_filter_problems(node: str, params: Mapping[str, Any], connected: set[str]) -> list[str]:
    """Build-time form of require_filter, unless a connection supplies the filter."""
    if "filter" in connected or "all" in connected:
        return []
    try:
        require_filter(params, node)
    except WorkflowValidationError as exc:
        return exc.errors
    return []
