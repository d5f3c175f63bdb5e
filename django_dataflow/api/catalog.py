"""GET nodes/: every registered model's node types, each with a JSON Schema of its params.

The schemas are built from the node classes themselves: the descriptions are
``param_descriptions()`` (what ``dataflow_nodes`` and docs/reference/nodes.md print), field types
come from the model-field mapping in nodes/schema.py. They describe rather than police: values
are converted form-like by each field's ``to_python`` ("33" for an integer field is accepted), and
any param may instead be a ``"{{input}}"`` placeholder. Unknown params are refused, so every
schema has ``additionalProperties: false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_dataflow.access import permission_name
from django_dataflow.nodes.schema import PARAM_TYPES
from django_dataflow.nodes.values import value_field

if TYPE_CHECKING:
    from django.db import models

    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.registry import ModelEntry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: A param that is a whole "{{name}}" placeholder, filled from the run's inputs.
PLACEHOLDER_SCHEMA = {"type": "string", "pattern": r"^\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}$"}

_STRING_LIST = {"type": "array", "items": {"type": "string"}}
#: Structural types of the operations' own params (by name; 'fields' and 'id' depend on the node).
OPERATION_PARAM_TYPES: dict[str, dict[str, Any]] = {
    "filter": {"type": "object"},
    "conditions": {"type": "object"},
    "order_by": {"type": ["array", "object"]},
    "limit": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
    "with_total": {"type": "boolean"},
    "after": {"type": ["string", "null"]},
    "required": {"type": "boolean"},
    "validate": {"type": "boolean"},
    "all": {"type": "boolean"},
    "batch_size": {"type": "integer", "minimum": 1},
    "ids": {"type": "array"},
    "pipeline": {"type": "array", "items": {"type": "object"}},
    "conflict_on": _STRING_LIST,
    "update_fields": _STRING_LIST,
}


def field_schema(field: models.Field) -> dict[str, Any]:
    """The JSON Schema of one model field's value, from the PARAM_TYPES mapping."""
    target = value_field(field)
    kind = PARAM_TYPES.get(target.get_internal_type(), "string")
    if kind == "any JSON":
        return {}
    base, _, fmt = kind.partition(" (")
    schema: dict[str, Any] = {"type": [base, "null"] if field.null else base}
    if fmt:
        schema["format"] = fmt.rstrip(")")
    if getattr(field, "max_length", None) and base == "string" and not field.is_relation:
        schema["maxLength"] = field.max_length
    if field.choices:
        schema["enum"] = [value for value, _label in field.flatchoices] + ([None] if field.null else [])
    return schema


def _record_schema(entry: ModelEntry) -> dict[str, Any]:
    """An object of writable fields (a Create's params, an Update's 'fields', a bulk row)."""
    return {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in entry.schema.writable.items()},
        "additionalProperties": False,
    }


def _param_schema(node: type[ModelNode], name: str) -> dict[str, Any]:
    entry = node.entry
    if name == "id":
        return field_schema(entry.model._meta.pk)
    if name == "fields":
        return _STRING_LIST if node.operation == "List" else _record_schema(entry)
    if name == "data":
        return {"type": "array", "items": _record_schema(entry)}
    if name in OPERATION_PARAM_TYPES:
        return dict(OPERATION_PARAM_TYPES[name])
    field = entry.schema.writable.get(name)
    return field_schema(field) if field is not None else {}


def params_schema(node: type[ModelNode]) -> dict[str, Any]:
    """The JSON Schema of a node's params object."""
    properties = {}
    for name, description in node.param_descriptions().items():
        value = _param_schema(node, name)
        properties[name] = {"description": description, "anyOf": [value, PLACEHOLDER_SCHEMA]}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{node.type_name} params",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def node_json(node: type[ModelNode]) -> dict[str, Any]:
    """One node type: its operation, the permissions it needs, and its params schema."""
    return {
        "type": node.type_name,
        "operation": node.operation,
        "permissions": [permission_name(node.model, action) for action in node.permissions],
        "writes": node.writes,
        "result_keys": node.result_keys(),
        "params_schema": params_schema(node),
    }


def catalog(entries: list[ModelEntry]) -> dict[str, Any]:
    """GET nodes/: {"models": [{"model", "name", "nodes": [...]}]}."""
    return {
        "models": [
            {"model": e.label, "name": e.name, "nodes": [node_json(cls) for cls in e.nodes.values()]}
            for e in entries
        ]
    }
