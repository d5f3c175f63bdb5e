"""The one filter translator: a MongoDB-style filter dict -> a Django Q object.

Field names are resolved against the registered model (never pasted into SQL) and every value
becomes a bound parameter through Django's lookups.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.db.models import Q, lookups
from django.db.models.fields.json import KT
from django.utils import timezone

from django_dataflow import access, bounds, conf
from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.query import lookups as text_lookups
from django_dataflow.query.paths import FieldPath, resolve
from django_dataflow.query.regex import check_pattern
from django_dataflow.workflow.templating import is_template

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

_MATCH_NOTHING = Q(pk__in=[])


def _and(parts: list[Q]) -> Q:
    return reduce(lambda a, b: a & b, parts) if parts else Q()


def _or(parts: list[Q]) -> Q:
    return reduce(lambda a, b: a | b, parts)


class FilterTranslator:
    """Translate (convert=True) or only check (convert=False, at build time) one filter."""

    def __init__(self, entry: ModelEntry, *, convert: bool = True, where: str = "filter") -> None:
        self.entry = entry
        self.convert = convert
        self.where = where
        self.terms = 0
        self.many = False
        self.max_terms = conf.max_filter_terms()
        self.max_depth = conf.max_filter_depth()

    def error(self, message: str) -> WorkflowValidationError:
        """A validation error prefixed with where the filter sits."""
        return WorkflowValidationError(f"{self.where}: {message}")

    def translate(self, spec: Any) -> Q:
        """The Q for a whole filter document."""
        if spec is None:
            return Q()
        q = self._document(spec, depth=0)
        if self.many and self.convert:
            # A join through a reverse FK or many-to-many repeats a row once per related row:
            # select the matching primary keys instead, so each record is returned (and counted,
            # read, updated) once.
            return Q(pk__in=self.entry.model._base_manager.filter(q).values("pk"))
        return q

    def _document(self, spec: Any, depth: int) -> Q:
        if not isinstance(spec, dict):
            raise self.error(f"a filter must be an object, not {type(spec).__name__}")
        if depth > self.max_depth:
            raise self.error(f"nested deeper than DATAFLOW['MAX_FILTER_DEPTH'] ({self.max_depth})")
        parts = []
        for key, value in spec.items():
            if not isinstance(key, str):
                raise self.error(f"filter keys must be strings, got {key!r}")
            if key.startswith("$"):
                parts.append(self._logical(key, value, depth))
            else:
                path = resolve(self.entry, key, filtering=True)
                self.many = self.many or path.many
                parts.append(self._field(path, value, depth))
        return _and(parts)

    def _logical(self, op: str, value: Any, depth: int) -> Q:
        if op == "$not":
            return ~self._document(value, depth + 1)
        if op not in ("$and", "$or", "$nor"):
            raise self.error(
                f"unknown operator {op!r} at the top of a filter; valid: $and, $nor, $not, $or "
                f"(field operators go under a field name)"
            )
        if not isinstance(value, list) or not value:
            raise self.error(f"{op} takes a non-empty list of filters")
        subs = [self._document(item, depth + 1) for item in value]
        if op == "$and":
            return _and(subs)
        return _or(subs) if op == "$or" else ~_or(subs)

    def _field(self, path: FieldPath, value: Any, depth: int) -> Q:
        if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
            if not all(isinstance(k, str) and k.startswith("$") for k in value):
                raise self.error(f"'{path.dotted}' mixes operators and plain keys: {sorted(value)}")
            return _and([self._operator(path, op, arg, depth) for op, arg in value.items()])
        return self._operator(path, "$eq", value, depth)

    def _operator(self, path: FieldPath, op: str, arg: Any, depth: int) -> Q:
        self.terms += 1
        if self.terms > self.max_terms:
            raise self.error(f"more than DATAFLOW['MAX_FILTER_TERMS'] ({self.max_terms}) conditions")
        handler = OPERATORS.get(op)
        if handler is None:
            raise self.error(
                f"unknown operator {op!r} on '{path.dotted}'; valid: {valid_names(OPERATORS)}"
            )
        if op == "$not":
            if not isinstance(arg, dict) or not arg:
                raise self.error(f"$not on '{path.dotted}' takes an object of operators")
            if depth + 1 > self.max_depth:
                raise self.error(f"nested deeper than DATAFLOW['MAX_FILTER_DEPTH'] ({self.max_depth})")
            return ~self._field(path, arg, depth + 1)
        if op in NEGATIONS:
            # Negate outside the visibility limit, so that a hidden related row counts as missing
            # (which $ne and $nin match, as in MongoDB) rather than as a row that differs.
            positive = OPERATORS[NEGATIONS[op]]
            return ~self._visible(path, lambda p: positive(self, p, op, arg))
        return self._visible(path, lambda p: handler(self, p, op, arg))

    def _visible(self, path: FieldPath, build: Callable[[FieldPath], Q]) -> Q:
        """The condition built on path, limited to related rows the run's user may see.

        Through a relation into a model with a row_filter, `customer.email = x` becomes
        `customer IN (visible customers with email = x)`: the comparison happens inside the
        subquery, so negations ($ne, $not, $nor) cannot learn anything about hidden rows either.
        """
        run_access = access.current() if self.convert else None
        if run_access is None:
            return build(path)
        for hop in path.hops:
            if run_access.scope(hop.entry) is not None:
                related = hop.entry.model._base_manager.filter(self._visible(path.beyond(hop), build))
                visible = run_access.scoped(hop.entry, related).values("pk")
                return Q(**{f"{hop.prefix}__in": visible})
        return build(path)

    # Value helpers -----------------------------------------------------------------------------

    def value(self, path: FieldPath, op: str, arg: Any) -> Any:
        """Convert one operand (skipped when only checking)."""
        if not self.convert:
            return arg
        return path.convert(arg, operator=op)

    def values(self, path: FieldPath, op: str, arg: Any) -> list[Any] | None:
        """Convert a list operand; None when only checking a placeholder."""
        if not self.convert and is_template(arg):
            return None
        if not isinstance(arg, list):
            raise self.error(f"{op} on '{path.dotted}' takes a list, not {type(arg).__name__}")
        bounds.check_row_count(len(arg), where=f"{self.where}: {op} on '{path.dotted}'")
        return [self.value(path, op, item) for item in arg]


def _eq(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    if arg is None:
        if path.is_json:
            # A JSON key that is absent or holds JSON null, like MongoDB's "missing".
            return Q(**{f"{path.lookup}__isnull": True}) | Q(**{path.lookup: None})
        return Q(**{f"{path.lookup}__isnull": True})
    return _known(path, Q(**{f"{path.lookup}__exact": t.value(path, op, arg)}))


def _known(path: FieldPath, q: Q) -> Q:
    """A JSON key comparison made false, not SQL-unknown, where the key is missing or JSON null.

    Negations ($ne, $nin, $not, $nor) then match those rows, as MongoDB's "missing" does; Django
    already does this for nullable columns, but not for keys inside a JSONField.
    """
    if not path.is_json:
        return q
    return q & Q(**{f"{path.lookup}__isnull": False}) & ~Q(**{path.lookup: None})


def _ne(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    return ~_eq(t, path, "$ne", arg)


def _compare(lookup: str) -> Callable[[FilterTranslator, FieldPath, str, Any], Q]:
    def build(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
        if arg is None:
            raise t.error(f"{op} on '{path.dotted}' needs a value, not null")
        return _known(path, Q(**{f"{path.lookup}__{lookup}": t.value(path, op, arg)}))

    return build


def _in(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    items = t.values(path, op, arg)
    if items is None:
        return Q()
    present = [v for v in items if v is not None]
    q = _known(path, Q(**{f"{path.lookup}__in": present})) if present else _MATCH_NOTHING
    if len(present) != len(items):
        q = q | _eq(t, path, op, None)
    return q


def _nin(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    return ~_in(t, path, op, arg)


def _flag(t: FilterTranslator, op: str, path: FieldPath, arg: Any) -> bool:
    if not t.convert and is_template(arg):
        return True
    if not isinstance(arg, bool):
        raise t.error(f"{op} on '{path.dotted}' takes true or false, not {arg!r}")
    return arg


def _isnull(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    flag = _flag(t, op, path, arg)
    if path.is_json:
        return _key_absent(path) if flag else ~_key_absent(path)
    return Q(**{f"{path.lookup}__isnull": flag})


def _exists(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    wanted = _flag(t, op, path, arg)
    if path.is_json:
        return ~_key_absent(path) if wanted else _key_absent(path)
    return Q(**{f"{path.lookup}__isnull": not wanted})


def _key_absent(path: FieldPath) -> Q:
    """A JSON key is absent, as a definite true/false.

    Not `parent__has_key`: on PostgreSQL `(data -> 'a') ? 'b'` is NULL when 'a' itself is missing,
    and its negation ($exists: false, $not, $nor) would then miss those rows. `key__isnull=True` is
    `data -> 'a' -> 'b' IS NULL` there (JSON_TYPE(...) IS NULL on SQLite): never NULL itself.
    """
    return Q(**{f"{path.lookup}__isnull": True})


def _between(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    bounds = t.values(path, op, arg)
    if bounds is None:
        return Q()
    if len(bounds) != 2 or None in bounds:
        raise t.error(f"$between on '{path.dotted}' takes [low, high], both non-null")
    return _known(path, Q(**{f"{path.lookup}__gte": bounds[0], f"{path.lookup}__lte": bounds[1]}))


def _is_text(path: FieldPath) -> bool:
    return isinstance(path.field, (models.CharField, models.TextField)) and not path.is_json


def _text(
    django_lookup: str, expression_lookup: type[lookups.Lookup]
) -> Callable[[FilterTranslator, FieldPath, str, Any], Q]:
    """A text operator: a registered lookup on text columns, the same lookup over KT() on JSON keys."""

    def build(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
        if not t.convert and is_template(arg):
            return Q()
        if not isinstance(arg, str):
            raise t.error(f"{op} on '{path.dotted}' takes a string, not {type(arg).__name__}")
        if op in ("$regex", "$iregex"):
            check_pattern(arg, where=f"{t.where}: {op} on '{path.dotted}'")
        if op in ("$like", "$ilike") and (len(arg) - len(arg.rstrip("\\"))) % 2:
            # PostgreSQL refuses such a pattern at run time; SQLite would quietly match nothing.
            raise t.error(
                f"{op} on '{path.dotted}': the pattern ends with a lone backslash (the escape "
                "character); write \\\\ for a literal backslash"
            )
        if path.is_json:
            return _known(path, Q(expression_lookup(KT(path.lookup), arg)))
        if not _is_text(path):
            raise t.error(
                f"{op} needs a text field or a JSON key; '{path.dotted}' is a "
                f"{path.field.get_internal_type()}"
            )
        return Q(**{f"{path.lookup}__{django_lookup}": arg})

    return build


def _contains(t: FilterTranslator, path: FieldPath, op: str, arg: Any) -> Q:
    """Containment on JSON and arrays, substring on text (MongoDB's word for both)."""
    internal = path.field.get_internal_type()
    if path.is_json or internal == "JSONField":
        if isinstance(arg, dict):
            return _json_subset(t, path, arg)
        if isinstance(arg, str) and path.is_json:
            return _text("dataflow_contains", text_lookups.Contains)(t, path, op, arg)
        # A list or scalar inside JSON: PostgreSQL's @> (SQLite has no JSON containment).
        if t.convert and connections[conf.database()].vendor != "postgresql":
            raise t.error(
                f"$contains on '{path.dotted}' with a {type(arg).__name__} is JSON containment, "
                "which needs PostgreSQL; an object operand works everywhere"
            )
        return _known(path, Q(**{f"{path.lookup}__contains": arg}))
    if internal == "ArrayField":
        return Q(**{f"{path.lookup}__contains": arg if isinstance(arg, list) else [arg]})
    return _text("dataflow_contains", text_lookups.Contains)(t, path, op, arg)


def _json_subset(t: FilterTranslator, path: FieldPath, arg: dict[str, Any]) -> Q:
    """{"metadata": {"$contains": {"a": {"b": 1}}}} as key equalities, the same on every backend."""
    parts = []
    for key, value in arg.items():
        if not isinstance(key, str):
            raise t.error(f"$contains on '{path.dotted}': keys must be strings, got {key!r}")
        nested = path.json_child(key)
        if isinstance(value, dict) and value:
            parts.append(_json_subset(t, nested, value))
        else:
            parts.append(_eq(t, nested, "$contains", value))
    return _and(parts)


OPERATORS: dict[str, Callable[[FilterTranslator, FieldPath, str, Any], Q]] = {
    "$eq": _eq,
    "$ne": _ne,
    "$gt": _compare("gt"),
    "$gte": _compare("gte"),
    "$lt": _compare("lt"),
    "$lte": _compare("lte"),
    "$in": _in,
    "$nin": _nin,
    "$isnull": _isnull,
    "$exists": _exists,
    "$between": _between,
    "$contains": _contains,
    "$icontains": _text("icontains", lookups.IContains),
    "$startswith": _text("dataflow_startswith", text_lookups.StartsWith),
    "$endswith": _text("dataflow_endswith", text_lookups.EndsWith),
    "$like": _text("dataflow_like", text_lookups.Like),
    "$ilike": _text("dataflow_ilike", text_lookups.ILike),
    "$regex": _text("regex", lookups.Regex),
    "$iregex": _text("iregex", lookups.IRegex),
    "$not": _ne,  # dispatched in _operator; listed so error messages name it
}


#: Operators that are the negation of another one.
NEGATIONS = {"$ne": "$eq", "$nin": "$in"}


# Translating costs tens of microseconds, a tenth of a small List page; a workflow run again and
# again sends the same filters, so translations are kept, keyed by the filter's canonical JSON and
# everything else a translation depends on: the database (vendor checks), the active time zone
# (naive datetimes are made aware in it) and the settings (limits); never for a user's run.
# QuerySet.filter() never mutates a Q, so one Q can serve every run.
_TRANSLATED: dict[tuple[Any, ...], tuple[ModelEntry, Q]] = {}
_TRANSLATED_MAX = 1024


def translate(entry: ModelEntry, spec: Any, *, where: str = "filter") -> Q:
    """Translate a filter into a Q, converting values with the model fields."""
    if access.current() is not None:
        # A run for a user: permissions and row filters shape the translation, so it is not kept.
        return FilterTranslator(entry, where=where).translate(spec)
    try:
        text = json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return FilterTranslator(entry, where=where).translate(spec)  # not JSON: not cacheable
    key = (entry.label, where, text, conf.database(), timezone.get_current_timezone_name(), conf.generation())
    hit = _TRANSLATED.get(key)
    if hit is not None and hit[0] is entry:
        return hit[1]
    q = FilterTranslator(entry, where=where).translate(spec)
    if len(_TRANSLATED) >= _TRANSLATED_MAX:
        _TRANSLATED.clear()
    _TRANSLATED[key] = (entry, q)
    return q


def check(entry: ModelEntry, spec: Any, *, where: str = "filter") -> None:
    """Validate a filter's names, operators and shape without converting placeholder values."""
    if is_template(spec):
        return
    FilterTranslator(entry, convert=False, where=where).translate(spec)
