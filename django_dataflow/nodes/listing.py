"""List and Count: filtered, ordered, paged reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.params import flag, integer, static_problems
from django_dataflow.nodes.values import jsonable
from django_dataflow.query.ordering import order_by, projection
from django_dataflow.runtime.context import RunContext
from django_dataflow.workflow.templating import is_template


def _limit(params: Mapping[str, Any]) -> int:
    return integer(
        params, "limit", conf.default_limit(), minimum=0, maximum=conf.max_limit(),
        limit_name="DATAFLOW['MAX_LIMIT']",
    )


def _offset(params: Mapping[str, Any]) -> int:
    return integer(params, "offset", 0, minimum=0)


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
            },
        )
        return problems

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one SELECT (two with with_total)."""
        limit, offset = _limit(params), _offset(params)
        names = projection(cls.entry, params.get("fields"))
        ordering = order_by(cls.entry, params.get("order_by"))
        matching = cls.queryset(ctx).filter(cls.filter_q(params.get("filter")))
        # Without an explicit order, paging would be nondeterministic: fall back to Meta.ordering
        # or the primary key.
        ordered = matching.order_by(*ordering) if ordering else (
            matching if cls.model._meta.ordering else matching.order_by("pk")
        )
        rows = ordered.values(*names)[offset : offset + limit] if limit else []
        records = [{k: jsonable(v) for k, v in row.items()} for row in rows]
        result: dict[str, Any] = {"records": records, "count": len(records)}
        if flag(params, "with_total", False):
            result["total"] = matching.count()
        return result


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
