"""Resolve dotted field names ('customer.email', 'metadata.theme') against registered models."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import ForeignObjectRel

from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.nodes.values import InvalidValue, to_python
from django_dataflow.registry import get_entry, registry

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

LOOKUP_SEP = "__"
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Hop:
    """One relation a path follows into another registered model."""

    #: The lookup from the path's model to the related model ('customer', 'orders__product').
    prefix: str
    entry: ModelEntry
    #: A forward foreign key (or one-to-one) rather than a reverse or many-to-many relation.
    forward: bool


@dataclass(frozen=True)
class FieldPath:
    """A validated field path: the Django lookup it maps to and how values are converted."""

    dotted: str
    lookup: str
    field: models.Field
    json_keys: tuple[str, ...] = ()
    #: Whether the path follows a reverse FK or many-to-many: a join that can repeat rows.
    many: bool = False
    #: The relations followed into other registered models, outermost first.
    hops: tuple[Hop, ...] = ()

    @property
    def is_json(self) -> bool:
        """Whether the path ends inside a JSONField's keys."""
        return bool(self.json_keys)

    def json_child(self, key: str) -> FieldPath:
        """The path one key deeper inside a JSONField ('metadata.a' -> 'metadata.a.b')."""
        dotted = f"{self.dotted}.{key}"
        _check_json_keys(dotted, (key,))
        return replace(self, dotted=dotted, lookup=f"{self.lookup}{LOOKUP_SEP}{key}",
                       json_keys=(*self.json_keys, key))

    def beyond(self, hop: Hop) -> FieldPath:
        """The same path seen from the model one of its hops reaches ('customer__email' -> 'email')."""
        index = self.hops.index(hop)
        cut = len(hop.prefix) + len(LOOKUP_SEP)
        hops = tuple(Hop(h.prefix[cut:], h.entry, h.forward) for h in self.hops[index + 1 :])
        return replace(self, lookup=self.lookup[cut:], hops=hops, many=any(not h.forward for h in hops))

    def convert(self, value: Any, *, operator: str = "") -> Any:
        """Convert a filter value with the final field's to_python; JSON keys take JSON values."""
        if self.is_json:
            if not isinstance(value, (*_JSON_SCALARS, dict, list)):
                raise InvalidValue(f"field '{self.dotted}' takes JSON values, not {type(value).__name__}")
            return value
        try:
            return to_python(self.field, value, label=self.dotted)
        except InvalidValue as exc:
            if not operator:
                raise
            raise InvalidValue(f"{operator} on {exc}") from None


@lru_cache(maxsize=1024)
def visible_fields(entry: ModelEntry) -> dict[str, models.Field | ForeignObjectRel]:
    """Names a filter may use on one model: visible fields, FK attnames, 'pk', registered relations."""
    names: dict[str, models.Field | ForeignObjectRel] = {}
    meta = entry.model._meta
    for f in meta.get_fields():
        if entry.hides(f):
            continue
        concrete = getattr(f, "concrete", False)
        # Relations that are not a column of this table are followed only to registered models;
        # a concrete FK to an unregistered model can still be compared by its key value.
        if f.is_relation and not concrete and (f.related_model is None or get_entry(f.related_model) is None):
            continue
        names[f.name] = f
        if concrete and isinstance(f, models.Field):
            names[f.attname] = f
    if not entry.hides(meta.pk):
        names["pk"] = meta.pk
    return names


def resolve(entry: ModelEntry, dotted: str, *, filtering: bool = False) -> FieldPath:
    """Resolve a dotted name on a registered model, or raise WorkflowValidationError listing choices.

    During a run with a user, a name through relations needs view permission on the models it
    reaches (PermissionDenied); filtering=True (the filter translator) may also cross models whose
    rows a row_filter limits, because the translator keeps the comparison to the visible rows.
    """
    path = _resolve(entry, dotted)
    if path.hops:
        from django_dataflow import access

        run_access = access.current()
        if run_access is not None:
            run_access.check_path(path, filtering=filtering)
    return path


@lru_cache(maxsize=4096)
def _resolve(entry: ModelEntry, dotted: str) -> FieldPath:
    if not isinstance(dotted, str) or not dotted:
        raise WorkflowValidationError(f"field names must be non-empty strings, got {dotted!r}")
    parts = dotted.split(".")
    current = entry
    lookups: list[str] = []
    hops: list[Hop] = []
    many = False
    for index, part in enumerate(parts):
        visible = visible_fields(current)
        field = visible.get(part)
        if field is None or LOOKUP_SEP in part:
            raise WorkflowValidationError(
                f"unknown field '{dotted}' on {current.name}"
                + (f" (at '{part}')" if len(parts) > 1 else "")
                + f"; valid fields: {valid_names(visible)}"
            )
        last = index == len(parts) - 1
        if isinstance(field, models.JSONField):
            keys = tuple(parts[index + 1 :])
            _check_json_keys(dotted, keys)
            lookup = LOOKUP_SEP.join([*lookups, field.name, *keys])
            return FieldPath(dotted, lookup, field, keys, many, tuple(hops))
        if not field.is_relation and isinstance(field, models.Field):  # reverse relations are relations
            if not last:
                raise WorkflowValidationError(
                    f"'{part}' in '{dotted}' is a {field.get_internal_type()}, not a relation or JSONField"
                )
            name = "pk" if part == "pk" else field.name
            return FieldPath(dotted, LOOKUP_SEP.join([*lookups, name]), field, many=many, hops=tuple(hops))
        concrete_fk = getattr(field, "concrete", False) and (field.many_to_one or field.one_to_one)
        if last:
            if concrete_fk and isinstance(field, models.Field):  # a reverse relation is never concrete
                lookup = LOOKUP_SEP.join([*lookups, field.attname])
                return FieldPath(dotted, lookup, field, many=many, hops=tuple(hops))
            raise WorkflowValidationError(
                f"'{dotted}' is a relation; name one of its fields, e.g. '{dotted}.pk'"
            )
        if part != field.name:
            raise WorkflowValidationError(f"'{part}' in '{dotted}' is a key value; use '{field.name}'")
        related_model = field.related_model
        assert related_model is not None  # visible_fields() drops relations without a model (generic)
        related = get_entry(related_model)
        if related is None:
            raise WorkflowValidationError(
                f"'{dotted}' follows '{part}' to {related_model._meta.label}, "
                "which is not registered with django_dataflow"
            )
        lookups.append(field.name)
        hops.append(Hop(LOOKUP_SEP.join(lookups), related, bool(concrete_fk)))
        many = many or bool(field.one_to_many or field.many_to_many)
        current = related
    raise AssertionError("unreachable")  # pragma: no cover


def _check_json_keys(dotted: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        # A key holding '__' or an empty key would be re-split by Django into other lookups.
        if not isinstance(key, str) or not key or LOOKUP_SEP in key or key.endswith("_"):
            raise WorkflowValidationError(
                f"JSON key {key!r} in '{dotted}' is not allowed (empty, holding '__' or ending in '_')"
            )
        if not key.isprintable():
            raise WorkflowValidationError(
                f"JSON key {key!r} in '{dotted}' is not allowed (control characters or invalid Unicode)"
            )


def resolve_pk(entry: ModelEntry) -> FieldPath:
    """The primary key's path ('pk'), always available for ordering and paging."""
    return FieldPath("pk", "pk", entry.model._meta.pk)


registry().listeners.append(_resolve.cache_clear)
registry().listeners.append(visible_fields.cache_clear)
