"""Per-model metadata for nodes: the model-field -> param mapping table, writable and required
params, record fields and unique sets. Built lazily, once per registered model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.db import models

from django_dataflow.nodes.values import records_converter, value_field

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

# Django internal field type -> JSON type of the param (as in a JSON Schema), like DRF's
# ModelSerializer mapping. Anything absent is a "string".
PARAM_TYPES: dict[str, str] = {
    "AutoField": "integer",
    "BigAutoField": "integer",
    "SmallAutoField": "integer",
    "IntegerField": "integer",
    "BigIntegerField": "integer",
    "SmallIntegerField": "integer",
    "PositiveIntegerField": "integer",
    "PositiveBigIntegerField": "integer",
    "PositiveSmallIntegerField": "integer",
    "FloatField": "number",
    "DecimalField": "string (decimal)",
    "BooleanField": "boolean",
    "NullBooleanField": "boolean",
    "DateTimeField": "string (date-time)",
    "DateField": "string (date)",
    "TimeField": "string (time)",
    "DurationField": "string (duration)",
    "UUIDField": "string (uuid)",
    "JSONField": "any JSON",
    "BinaryField": "string (base64)",
}


@dataclass(frozen=True)
class ParamInfo:
    """How one model field appears as a node param."""

    name: str
    field: models.Field
    type: str
    required: bool
    description: str


class ModelSchema:
    """What nodes need to know about one registered model."""

    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry
        self.model = entry.model
        self.meta = entry.model._meta
        self._converters: dict[tuple[str, ...], Callable[[list[dict[str, Any]]], None]] = {}

    @cached_property
    def concrete_fields(self) -> list[models.Field]:
        """Concrete fields visible through nodes (exclude_fields removed)."""
        return [f for f in self.meta.concrete_fields if not self.entry.hides(f)]

    @cached_property
    def hidden_names(self) -> frozenset[str]:
        """Names of every field exclude_fields hides (attnames resolved, hidden links included)."""
        return frozenset(f.name for f in self.meta.get_fields() if self.entry.hides(f))

    @cached_property
    def record_names(self) -> list[str]:
        """Keys of a record: attnames, so FKs appear as '<field>_id'."""
        return [f.attname for f in self.concrete_fields]

    @cached_property
    def writable(self) -> dict[str, models.Field]:
        """Param name -> field for values a Create/Update may set; FKs accept name and attname."""
        result: dict[str, models.Field] = {}
        for f in self.concrete_fields:
            if not f.editable:
                continue
            result[f.attname] = f
            result[f.name] = f
        return result

    @cached_property
    def params(self) -> list[ParamInfo]:
        """The model-field -> param table used by Create and shown by dataflow_nodes."""
        infos = []
        for f in self.concrete_fields:
            if not f.editable:
                continue
            kind = PARAM_TYPES.get(value_field(f).get_internal_type(), "string")
            required = not (f.has_default() or f.blank or f.null or f.primary_key)
            description = str(f.verbose_name)
            if f.is_relation and f.related_model is not None:  # a concrete relation always has one
                description += f" (pk of {f.related_model._meta.label})"
            infos.append(ParamInfo(f.attname, f, kind, required, description))
        return infos

    @cached_property
    def required_fields(self) -> list[models.Field]:
        """Fields a Create must be given (no default, not blank, not null)."""
        return [p.field for p in self.params if p.required]

    @cached_property
    def auto_now_fields(self) -> list[models.Field]:
        """DateTime/Date fields with auto_now, refreshed on every update."""
        return [f for f in self.meta.concrete_fields if getattr(f, "auto_now", False)]

    @cached_property
    def unique_sets(self) -> list[frozenset[str]]:
        """Field-name sets backed by a unique constraint (for BulkUpsert's conflict_on)."""
        sets = [frozenset([f.name]) for f in self.meta.concrete_fields if f.unique]
        sets += [frozenset(group) for group in self.meta.unique_together]
        for constraint in self.meta.total_unique_constraints:
            sets.append(frozenset(constraint.fields))
        return sets

    @cached_property
    def _by_name(self) -> dict[str, models.Field]:
        by_name = {}
        for f in reversed(self.concrete_fields):  # the first field with a name wins, as before
            by_name[f.attname] = by_name[f.name] = f
        return by_name

    def field_for(self, name: str) -> models.Field | None:
        """The visible concrete field called name or attname, or None."""
        return self._by_name.get(name)

    def records_converter(self, names: tuple[str, ...]) -> Callable[[list[dict[str, Any]]], None]:
        """The (cached) converter making values() rows of these record keys JSON-safe."""
        converter = self._converters.get(names)
        if converter is None:
            converter = self._converters[names] = records_converter([self._by_name[n] for n in names])
        return converter
