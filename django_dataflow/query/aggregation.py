"""The aggregation pipeline ($match $group $sort $skip $limit $project $count) as ONE query.

Stages translate into values()/annotate() on a queryset: $match before $group is WHERE, after it
HAVING; $group is GROUP BY with one aggregate per accumulator. Only the (few) result rows are
post-processed in Python, never the table's rows.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    F,
    FloatField,
    JSONField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce

from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.nodes.values import column_name, jsonable
from django_dataflow.query import filters
from django_dataflow.query.ordering import may_be_null, sort_expression
from django_dataflow.query.paths import FieldPath, resolve
from django_dataflow.workflow.templating import is_template

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

STAGES = ("$match", "$group", "$sort", "$skip", "$limit", "$project", "$count")
ACCUMULATORS = ("$sum", "$avg", "$min", "$max", "$count", "$first", "$last", "$push", "$addToSet")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_COMPARISONS = {"$eq": "exact", "$ne": "exact", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
MAX_STAGES = 32
#: Largest $skip / $limit: what a database takes as OFFSET / LIMIT (a signed 64-bit integer).
MAX_WINDOW = 2**63 - 1


class JSONArrayAgg(Aggregate):
    """The values of a group as a JSON array (jsonb_agg / json_group_array)."""

    function = "JSON_GROUP_ARRAY"
    allow_distinct = True
    output_field = JSONField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        """PostgreSQL spells it jsonb_agg."""
        return self.as_sql(compiler, connection, function="JSONB_AGG", **extra)


class OrderedPick(Aggregate):
    """The first value of a group in a given order: (array_agg(x ORDER BY ...))[1]."""

    function = "ARRAY_AGG"
    template = "(%(function)s(%(expressions)s ORDER BY %(ordering)s))[1]"

    def __init__(self, expression: Any, order: list[tuple[str, str, bool]], **extra: Any) -> None:
        super().__init__(expression, **extra)
        self.order = order  # (table, column, descending)

    def as_sql(
        self, compiler: Any, connection: Any, function: str | None = None, template: str | None = None,
        arg_joiner: str | None = None, **extra: Any,
    ) -> Any:
        """Refuse backends without ordered aggregates (SQLite before 3.44)."""
        if connection.vendor != "postgresql":
            raise WorkflowValidationError("$first/$last need PostgreSQL (ordered aggregates)")
        qn = connection.ops.quote_name
        ordering = ", ".join(
            f"{qn(table)}.{qn(column)} {'DESC NULLS FIRST' if desc else 'ASC NULLS LAST'}"
            for table, column, desc in self.order
        )
        return super().as_sql(
            compiler, connection, function=function, template=template, arg_joiner=arg_joiner,
            ordering=ordering, **extra,
        )


@dataclass
class Plan:
    """What the pipeline asks for, after validation."""

    where: list[Q] = field(default_factory=list)
    pre_sort: list[tuple[FieldPath, bool]] = field(default_factory=list)
    group_sort: list[tuple[FieldPath, bool]] = field(default_factory=list)  # $sort before $group
    grouped: bool = False
    group_keys: dict[str, FieldPath] = field(default_factory=dict)  # output key -> path
    scalar_key: bool = True
    accumulators: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (op, expr)
    having: list[Q] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    offset: int = 0
    limit: int | None = None
    project: tuple[str, set[str]] | None = None  # ("include"|"exclude", names)
    count_as: str | None = None
    window_touched: bool = False


class PipelineCompiler:
    """Validate a pipeline (convert=False at build time) and run it as one query."""

    def __init__(self, entry: ModelEntry, *, convert: bool = True, where: str = "pipeline") -> None:
        self.entry = entry
        self.convert = convert
        self.where = where

    def error(self, message: str) -> WorkflowValidationError:
        """A validation error naming the pipeline."""
        return WorkflowValidationError(f"{self.where}: {message}")

    # Validation --------------------------------------------------------------------------------

    def plan(self, pipeline: Any) -> Plan:
        """Check every stage and return the plan."""
        if not isinstance(pipeline, list):
            raise self.error(f"must be a list of stages, not {type(pipeline).__name__}")
        if len(pipeline) > MAX_STAGES:
            raise self.error(f"has {len(pipeline)} stages; at most {MAX_STAGES}")
        plan = Plan()
        for index, stage in enumerate(pipeline):
            if not isinstance(stage, dict) or len(stage) != 1:
                raise self.error(f"stage {index} must be an object with one operator")
            ((op, arg),) = stage.items()
            handler = getattr(self, f"_stage_{str(op).lstrip('$')}", None) if op in STAGES else None
            if handler is None:
                raise self.error(f"stage {index}: unknown stage {op!r}; valid: {', '.join(STAGES)}")
            if plan.count_as is not None:
                raise self.error(f"stage {index}: nothing may follow $count")
            handler(plan, arg, index)
        return plan

    def _stage_match(self, plan: Plan, arg: Any, index: int) -> None:
        if plan.window_touched or plan.project is not None:
            raise self.error(
                f"stage {index}: $match after $sort/$skip/$limit/$project needs a subquery"
            )
        if plan.grouped:
            plan.having.append(self._having(plan, arg, index))
        else:
            translator = filters.FilterTranslator(self.entry, convert=self.convert, where=self.where)
            plan.where.append(translator.translate(arg))

    def _stage_group(self, plan: Plan, arg: Any, index: int) -> None:
        if plan.grouped or plan.window_touched:
            raise self.error(f"stage {index}: $group must come once, before $skip/$limit")
        if not isinstance(arg, dict) or "_id" not in arg:
            raise self.error(f"stage {index}: $group needs an object with '_id'")
        plan.grouped = True
        key = arg["_id"]
        if key is None:
            pass
        elif isinstance(key, str):
            plan.group_keys["_id"] = self._ref(key, index)
        elif isinstance(key, dict) and key:
            plan.scalar_key = False
            for name, ref in key.items():
                plan.group_keys[self._name(name, index)] = self._ref(ref, index)
        else:
            raise self.error(
                f"stage {index}: $group '_id' must be null, \"$field\" or an object of them"
            )
        for name, spec in arg.items():
            if name == "_id":
                continue
            name = self._name(name, index)
            if not isinstance(spec, dict) or len(spec) != 1:
                raise self.error(f"stage {index}: accumulator '{name}' must be {{\"$op\": ...}}")
            ((op, operand),) = spec.items()
            if op not in ACCUMULATORS:
                raise self.error(
                    f"stage {index}: unknown accumulator {op!r} for '{name}'; "
                    f"valid: {', '.join(ACCUMULATORS)}"
                )
            plan.accumulators[name] = (op, self._operand(op, operand, index, name))
            if op in ("$first", "$last") and not plan.pre_sort:
                raise self.error(f"stage {index}: {op} ('{name}') needs a $sort stage before $group")
            if op in ("$first", "$last") and any(
                p.lookup not in (p.field.name, p.field.attname, "pk") for p, _ in plan.pre_sort
            ):
                raise self.error(f"stage {index}: {op} ordering must use the model's own columns")
        plan.group_sort = list(plan.pre_sort)

    def _stage_sort(self, plan: Plan, arg: Any, index: int) -> None:
        if not isinstance(arg, dict) or not arg:
            raise self.error(f"stage {index}: $sort takes an object like {{\"total\": -1}}")
        if plan.window_touched:
            raise self.error(f"stage {index}: $sort after $skip/$limit needs a subquery")
        for name, direction in arg.items():
            if direction not in (1, -1) or isinstance(direction, bool):
                raise self.error(f"stage {index}: $sort direction of '{name}' must be 1 or -1")
            if plan.grouped:
                plan.sort.append((self._output(plan, name, index), direction == -1))
            else:
                plan.pre_sort.append((resolve(self.entry, name), direction == -1))

    def _stage_skip(self, plan: Plan, arg: Any, index: int) -> None:
        count = self._count(arg, "$skip", index)
        plan.offset += count
        if plan.limit is not None:
            plan.limit = max(0, plan.limit - count)
        plan.window_touched = True

    def _stage_limit(self, plan: Plan, arg: Any, index: int) -> None:
        count = self._count(arg, "$limit", index)
        plan.limit = count if plan.limit is None else min(plan.limit, count)
        plan.window_touched = True

    def _stage_project(self, plan: Plan, arg: Any, index: int) -> None:
        if not isinstance(arg, dict) or not arg:
            raise self.error(f"stage {index}: $project takes an object like {{\"name\": 1}}")
        modes = {bool(v) for k, v in arg.items() if k != "_id"}
        flags_ok = all(isinstance(v, (bool, int)) and v in (0, 1) for v in arg.values())
        if not flags_ok or len(modes) > 1:
            raise self.error(f"stage {index}: $project values must all be 1 or all be 0 (except _id)")
        include = modes == {True} or (not modes and bool(arg.get("_id")))
        available = self._available(plan)
        for name in arg:
            if name not in available:
                raise self.error(
                    f"stage {index}: $project names unknown field '{name}'; "
                    f"valid: {valid_names(available)}"
                )
        names = {k for k, v in arg.items() if bool(v) == include}
        if include and "_id" not in arg and plan.grouped:
            names.add("_id")
        plan.project = ("include" if include else "exclude", names)

    def _stage_count(self, plan: Plan, arg: Any, index: int) -> None:
        plan.count_as = self._name(arg, index)

    # Helpers -----------------------------------------------------------------------------------

    def _name(self, name: Any, index: int) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise self.error(
                f"stage {index}: output name {name!r} must be a letter then letters, digits, _"
            )
        return name

    def _ref(self, ref: Any, index: int) -> FieldPath:
        if not isinstance(ref, str) or not ref.startswith("$") or len(ref) < 2:
            raise self.error(f"stage {index}: field references look like \"$price\", not {ref!r}")
        return resolve(self.entry, ref[1:])

    def _operand(self, op: str, operand: Any, index: int, name: str) -> Any:
        if op == "$count":
            if operand not in ({}, None):
                raise self.error(f"stage {index}: $count accumulator '{name}' takes {{}}")
            return None
        if op == "$sum" and isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return operand
        return self._ref(operand, index)

    def _count(self, arg: Any, op: str, index: int) -> int:
        if not self.convert and is_template(arg):
            return 0
        if isinstance(arg, bool) or not isinstance(arg, int) or not 0 <= arg <= MAX_WINDOW:
            raise self.error(
                f"stage {index}: {op} takes a non-negative integer (at most {MAX_WINDOW}), not {arg!r}"
            )
        return arg

    def _available(self, plan: Plan) -> set[str]:
        if plan.grouped:
            return {"_id", *plan.accumulators}
        return set(self.entry.schema.record_names)

    def _output(self, plan: Plan, name: str, index: int) -> str:
        """The annotation alias behind a group output name ('_id', '_id.k', an accumulator)."""
        if name == "_id" and plan.scalar_key and "_id" in plan.group_keys:
            return "_dataflow_g__id"
        if name.startswith("_id.") and name[4:] in plan.group_keys and not plan.scalar_key:
            return f"_dataflow_g_{name[4:]}"
        if name in plan.accumulators:
            return f"_dataflow_a_{name}"
        keys = ["_id" if plan.scalar_key else f"_id.{k}" for k in plan.group_keys]
        choices = keys + list(plan.accumulators)
        raise self.error(f"stage {index}: '{name}' is not a $group output; valid: {valid_names(choices)}")

    def _having(self, plan: Plan, spec: Any, index: int) -> Q:
        """$match after $group: comparisons on group outputs, combined with $and/$or."""
        if not isinstance(spec, dict):
            raise self.error(f"stage {index}: $match takes an object")
        parts = []
        for name, condition in spec.items():
            if name in ("$and", "$or"):
                if not isinstance(condition, list) or not condition:
                    raise self.error(f"stage {index}: {name} takes a non-empty list")
                subs = [self._having(plan, item, index) for item in condition]
                parts.append(reduce(lambda a, b: (a & b) if name == "$and" else (a | b), subs))
                continue
            alias = self._output(plan, name, index)
            operators = condition if isinstance(condition, dict) else {"$eq": condition}
            for op, value in operators.items():
                if op == "$in":
                    if not isinstance(value, list):
                        raise self.error(f"stage {index}: $in on '{name}' takes a list")
                    parts.append(Q(**{f"{alias}__in": value}))
                elif op in _COMPARISONS:
                    lookup = "isnull" if value is None else _COMPARISONS[op]
                    q = Q(**{f"{alias}__{lookup}": True if value is None else value})
                    parts.append(~q if op == "$ne" else q)
                else:
                    valid = ", ".join([*_COMPARISONS, "$in"])
                    raise self.error(
                        f"stage {index}: operator {op!r} on group output '{name}'; valid: {valid}"
                    )
        return reduce(lambda a, b: a & b, parts) if parts else Q()

    # Execution ---------------------------------------------------------------------------------

    def run(self, queryset: QuerySet[Any], pipeline: Any) -> list[dict[str, Any]]:
        """Execute the pipeline on a queryset of the entry's model."""
        plan = self.plan(pipeline)
        qs = queryset.filter(*plan.where)
        if not plan.grouped:
            return self._documents(plan, qs)
        vendor = connections[qs.db].vendor
        keys = {f"_dataflow_g_{name}": F(path.lookup) for name, path in plan.group_keys.items()}
        aggregates = {
            f"_dataflow_a_{name}": self._aggregate(op, operand, plan, vendor)
            for name, (op, operand) in plan.accumulators.items()
        }
        if not keys:
            # One group over every row; like MongoDB, no rows means no group at all.
            aggregates["_dataflow_rows"] = Count("pk")
            grouped = qs.order_by().values(_dataflow_all=Value(1)).annotate(**aggregates)
        else:
            grouped = qs.order_by().values(**keys).annotate(**aggregates)
        grouped = grouped.filter(*plan.having)
        if plan.sort:
            grouped = grouped.order_by(*(sort_expression(alias, desc) for alias, desc in plan.sort))
        if plan.count_as is not None:
            total = grouped.count() if keys else sum(1 for row in grouped if row["_dataflow_rows"])
            return [{plan.count_as: _window_size(total, plan)}]
        grouped = _window(grouped, plan)
        results = []
        for row in grouped:
            if not keys and not row["_dataflow_rows"]:
                continue
            results.append(self._shape(plan, row))
        return _project(results, plan.project)

    def _aggregate(self, op: str, operand: Any, plan: Plan, vendor: str) -> Any:
        if op == "$count":
            return Count("pk")
        if op == "$sum" and not isinstance(operand, FieldPath):
            return Sum(Value(operand))
        path: FieldPath = operand
        column: Any = F(path.lookup)
        if path.is_json:
            column = Cast(column, FloatField())
        if op == "$sum":
            # MongoDB: $sum over no numbers is 0. COALESCE in SQL (not only in the shaped result),
            # so $match and $sort after $group see the same 0 as the result does.
            total = FloatField() if path.is_json else path.field
            return Coalesce(Sum(column), Value(0), output_field=total)
        if op == "$avg":
            internal = path.field.get_internal_type()
            numeric = path.is_json or internal != "DecimalField"
            return Avg(Cast(column, FloatField())) if numeric else Avg(column)
        if op == "$min":
            return Min(column)
        if op == "$max":
            return Max(column)
        if op in ("$push", "$addToSet"):
            return JSONArrayAgg(column, distinct=op == "$addToSet")
        # $first / $last: the value of the first (last) row in the $sort given before $group.
        if not plan.group_sort:
            raise self.error(f"{op} needs a $sort stage before $group")
        if any(p.lookup not in (p.field.name, p.field.attname, "pk") for p, _ in plan.group_sort):
            raise self.error(f"{op} ordering must use the model's own columns")
        table = self.entry.model._meta.db_table
        order = [(table, column_name(p.field), d if op == "$first" else not d) for p, d in plan.group_sort]
        return OrderedPick(column, order)

    def _shape(self, plan: Plan, row: dict[str, Any]) -> dict[str, Any]:
        if not plan.group_keys:
            key: Any = None
        elif plan.scalar_key:
            key = jsonable(row["_dataflow_g__id"])
        else:
            key = {name: jsonable(row[f"_dataflow_g_{name}"]) for name in plan.group_keys}
        shaped = {"_id": key}
        for name, (op, operand) in plan.accumulators.items():
            value = row[f"_dataflow_a_{name}"]
            if op == "$sum" and value is None:
                value = 0  # MongoDB: $sum over no numbers is 0
            if isinstance(value, decimal.Decimal) and isinstance(operand, FieldPath) and not (
                _is_decimal(operand) or operand.is_json
            ):
                # PostgreSQL's SUM(bigint) is numeric: an integer column's sum stays a number.
                value = int(value) if value == value.to_integral_value() else float(value)
            elif isinstance(value, decimal.Decimal):
                value = _decimal(value, operand, op)
            elif op in ("$push", "$addToSet") and _is_decimal(operand) and value is not None:
                # JSON arrays carry numbers (10 on SQLite, 10.0 on PostgreSQL): strings at scale.
                value = [
                    None if v is None else _decimal(decimal.Decimal(str(v)), operand, op) for v in value
                ]
            shaped[name] = jsonable(value)
        return shaped

    def _documents(self, plan: Plan, qs: QuerySet[Any]) -> list[dict[str, Any]]:
        if plan.pre_sort:
            qs = qs.order_by(
                *(sort_expression(p.lookup, d, nullable=may_be_null(p)) for p, d in plan.pre_sort)
            )
        else:
            qs = qs.order_by("pk")
        if plan.count_as is not None:
            return [{plan.count_as: _window(qs, plan).count()}]
        names = list(self.entry.schema.record_names)
        if plan.project is not None:
            mode, chosen = plan.project
            names = [n for n in names if (n in chosen) == (mode == "include")]
        rows = _window(qs.values(*names), plan)
        return [{k: jsonable(v) for k, v in row.items()} for row in rows]


def _decimal(value: decimal.Decimal, operand: Any, op: str) -> decimal.Decimal:
    """Decimals at the column's scale (PostgreSQL and SQLite return different ones); an average
    keeps up to ten places, trailing zeros past the column's scale dropped (30.00, 7.50, 14.1666666667;
    never an exponent like 3E+1)."""
    if not value.is_finite():
        return value  # NaN or +-Infinity (a PostgreSQL numeric column can hold them): no scale applies
    places = getattr(getattr(operand, "field", None), "decimal_places", None)
    scale = places if isinstance(places, int) else 0
    if op == "$avg" or not isinstance(places, int):
        value = value.quantize(decimal.Decimal("1e-10")).normalize()
        exponent = value.as_tuple().exponent  # an int, value being finite (a str for NaN, Infinity)
        if isinstance(exponent, int) and exponent > -scale:
            value = value.quantize(decimal.Decimal(1).scaleb(-scale))
        return value
    return value.quantize(decimal.Decimal(1).scaleb(-places))


def _is_decimal(operand: Any) -> bool:
    return (
        isinstance(operand, FieldPath)
        and not operand.is_json
        and operand.field.get_internal_type() == "DecimalField"
    )


def _window_size(total: int, plan: Plan) -> int:
    remaining = max(0, total - plan.offset)
    return remaining if plan.limit is None else min(plan.limit, remaining)


def _window(qs: QuerySet[Any], plan: Plan) -> QuerySet[Any]:
    if plan.limit is not None:
        return qs[plan.offset : plan.offset + plan.limit]
    return qs[plan.offset :] if plan.offset else qs


def _project(
    results: list[dict[str, Any]], project: tuple[str, set[str]] | None
) -> list[dict[str, Any]]:
    if project is None:
        return results
    mode, names = project
    include = mode == "include"
    return [{k: v for k, v in row.items() if (k in names) == include} for row in results]


def check(entry: ModelEntry, pipeline: Any, *, where: str = "pipeline") -> None:
    """Validate a pipeline at build time."""
    if is_template(pipeline):
        return
    PipelineCompiler(entry, convert=False, where=where).plan(pipeline)


def run(entry: ModelEntry, queryset: QuerySet[Any], pipeline: Any) -> list[dict[str, Any]]:
    """Validate and execute a pipeline."""
    return PipelineCompiler(entry).run(queryset, pipeline)
