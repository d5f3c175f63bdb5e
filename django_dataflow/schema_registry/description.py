"""A model's schema as JSON-safe data: one dict per concrete column, and a hash of what matters.

The same shape describes a model from code, a row of the registry table and an introspected table,
so one diff, one hash, one dynamic-model builder and one code writer serve all three.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.fields.related import RelatedField

if TYPE_CHECKING:
    from django_dataflow.models import RegisteredModel
    from django_dataflow.registry import ModelEntry

#: Field keys the schema hash covers: what the database holds, plus the default (which decides
#: whether a node param is required). Validation-only attributes (blank, choices, the field class
#: when the column type is the same) are stored for rebuilding models but never count as drift.
HASHED_KEYS = (
    "name", "column", "type", "null", "unique", "primary_key", "default", "relation",
    "max_length", "max_digits", "decimal_places",
)
#: Of a relation, only the referenced table and column are schema; the rest helps rebuild it.
HASHED_RELATION_KEYS = ("table", "column")

#: An auto-incrementing key seen from the column referencing it: a plain integer of that size.
_REFERENCING_TYPES = {
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
}


@dataclass
class ModelDescription:
    """One model: where it lives, its node name and its fields (dicts, see describe_field)."""

    app_label: str
    model_name: str
    node_name: str
    table: str
    fields: list[dict[str, Any]]
    hidden_fields: list[str] = field(default_factory=list)
    managed: bool = True

    @property
    def label(self) -> str:
        """'app_label.ModelName'."""
        return f"{self.app_label}.{self.model_name}"

    @property
    def schema_hash(self) -> str:
        """sha256 of the table name and the hashed keys of every field, in name order."""
        return schema_hash(self.table, self.fields)

    def field_named(self, name: str) -> dict[str, Any] | None:
        """The field dict called name, or None."""
        return next((f for f in self.fields if f["name"] == name), None)


def schema_hash(table: str, fields: list[dict[str, Any]]) -> str:
    """The schema hash of a table's field dicts; field order and unhashed keys do not change it."""
    hashed = []
    for item in sorted(fields, key=lambda f: f["name"]):
        kept = {k: item[k] for k in HASHED_KEYS if item.get(k) is not None}
        if kept.get("relation"):
            kept["relation"] = {k: kept["relation"].get(k) for k in HASHED_RELATION_KEYS}
        hashed.append(kept)
    canonical = json.dumps({"table": table, "fields": hashed}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_entry(entry: ModelEntry) -> ModelDescription:
    """The description of a registered model from its code."""
    return describe_model(entry.model, node_name=entry.name, hidden_fields=entry.exclude_fields)


def describe_model(
    model: type[models.Model], *, node_name: str | None = None, hidden_fields: Any = ()
) -> ModelDescription:
    """The description of a model class: its own table's concrete columns (a proxy: its concrete
    model's; a multi-table child: the child table, whose key references the parent's)."""
    concrete = model._meta.concrete_model if model._meta.proxy else model
    assert concrete is not None  # ModelBase gives every proxy model its concrete_model
    meta = concrete._meta
    return ModelDescription(
        app_label=model._meta.app_label,
        model_name=model.__name__,  # what Options.object_name is set to (typed str | None)
        node_name=node_name or model.__name__,
        table=meta.db_table,
        fields=[describe_field(f) for f in meta.local_concrete_fields],
        hidden_fields=sorted(hidden_fields),
        managed=bool(model._meta.managed),
    )


def describe_row(row: RegisteredModel) -> ModelDescription:
    """The description a registry row holds."""
    return ModelDescription(
        app_label=row.app_label,
        model_name=row.model_name,
        node_name=row.node_name,
        table=row.db_table,
        fields=list(row.fields),
        hidden_fields=list(row.hidden_fields),
        managed=row.managed,
    )


def describe_field(f: models.Field) -> dict[str, Any]:
    """One concrete field as a JSON-safe dict; keys with no value are left out."""
    described: dict[str, Any] = {
        "name": f.name,
        "column": f.column,
        "type": f.get_internal_type(),
        "class": f.deconstruct()[1],
        "null": f.null,
        "blank": f.blank,
        "unique": f.unique,
        "primary_key": f.primary_key,
        "db_index": f.db_index,  # type: ignore[attr-defined]  # set in Field.__init__, not in django-stubs
        "default": describe_default(f),
        "relation": describe_relation(f),
    }
    for attr in ("max_length", "max_digits", "decimal_places"):
        value = getattr(f, attr, None)
        if value is not None:
            described[attr] = value
    for attr in ("auto_now", "auto_now_add"):
        if getattr(f, attr, False):
            described[attr] = True
    return {k: v for k, v in described.items() if v is not None}


def describe_default(f: models.Field) -> dict[str, Any] | None:
    """{"value": json} or {"callable": "dotted.path"} (or {"repr": ...} when neither fits)."""
    if not f.has_default():
        return None
    default = f.default
    if callable(default):
        return {"callable": f"{default.__module__}.{default.__qualname__}"}
    try:
        return {"value": json.loads(json.dumps(default, cls=DjangoJSONEncoder))}
    except (TypeError, ValueError):
        return {"repr": repr(default)}


def describe_relation(f: models.Field) -> dict[str, Any] | None:
    """Where a ForeignKey/OneToOneField points: table and column, and how to rebuild it."""
    if not (f.is_relation and f.concrete and (f.many_to_one or f.one_to_one)):
        return None
    assert isinstance(f, RelatedField) and f.remote_field is not None  # a concrete FK or one-to-one
    target = f.target_field
    column_field = target
    while isinstance(column_field, RelatedField):  # a key referencing a key (a multi-table child's pk)
        column_field = column_field.target_field
    on_delete = getattr(f.remote_field.on_delete, "__name__", "")
    relation = {
        "model": target.model._meta.label,
        "table": target.model._meta.db_table,
        "column": target.column,
        "to_field": target.name,
        "on_delete": on_delete if on_delete.isupper() else "DO_NOTHING",
        "related_name": f.remote_field.related_name,
        "column_type": _REFERENCING_TYPES.get(
            column_field.get_internal_type(), column_field.get_internal_type()
        ),
        "column_max_length": getattr(column_field, "max_length", None),
    }
    return {k: v for k, v in relation.items() if v is not None}
