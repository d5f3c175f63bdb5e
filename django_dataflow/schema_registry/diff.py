"""Field-by-field differences between two descriptions of one table, readable by people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_dataflow.schema_registry.description import HASHED_KEYS, HASHED_RELATION_KEYS


@dataclass(frozen=True)
class FieldChange:
    """A field added, removed or changed between an 'old' and a 'new' description."""

    kind: str  # "added", "removed" or "changed"
    name: str
    field: dict[str, Any]  # the new field (added, changed) or the old one (removed)
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (attribute, old, new) for "changed"

    def render(self) -> str:
        """One line: '+ colour: CharField(max_length=20), null', '~ price: max_digits 10 -> 12'."""
        if self.kind == "added":
            return f"+ {self.name}: {summarize_field(self.field)}"
        if self.kind == "removed":
            return f"- {self.name}: {summarize_field(self.field)}"
        parts = ", ".join(f"{key} {show(key, old)} -> {show(key, new)}" for key, old, new in self.changes)
        return f"~ {self.name}: {parts}"


def diff_fields(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[FieldChange]:
    """What turns old into new: removed fields, changed ones, then added ones, each in field order."""
    old_by_name = {f["name"]: f for f in old}
    new_by_name = {f["name"]: f for f in new}
    result = [FieldChange("removed", f["name"], f) for f in old if f["name"] not in new_by_name]
    for f in new:
        before = old_by_name.get(f["name"])
        if before is None:
            continue
        changes = tuple(
            (key, _hashed(key, before.get(key)), _hashed(key, f.get(key)))
            for key in HASHED_KEYS
            if _hashed(key, before.get(key)) != _hashed(key, f.get(key))
        )
        if changes:
            result.append(FieldChange("changed", f["name"], f, changes))
    result += [FieldChange("added", f["name"], f) for f in new if f["name"] not in old_by_name]
    return result


def render_diff(changes: list[FieldChange], indent: str = "    ") -> list[str]:
    """The changes as indented lines."""
    return [indent + change.render() for change in changes]


def summarize_field(f: dict[str, Any]) -> str:
    """'DecimalField(max_digits=10, decimal_places=2), null, default 0' and the like."""
    params = ", ".join(
        f"{key}={f[key]}" for key in ("max_length", "max_digits", "decimal_places") if f.get(key) is not None
    )
    text = f"{f.get('type', '?')}({params})" if params else str(f.get("type", "?"))
    relation = f.get("relation")
    if relation:
        text += f" -> {relation.get('table')}.{relation.get('column')}"
    flags = ["primary key"] if f.get("primary_key") else [k for k in ("unique", "null") if f.get(k)]
    if f.get("default") is not None:
        flags.append(f"default {show('default', f['default'])}")
    if f.get("column") not in (None, f.get("name"), f"{f.get('name')}_id"):
        flags.append(f"column {f['column']}")
    return ", ".join([text, *flags])


def show(key: str, value: Any) -> str:
    """A value as the diff prints it."""
    if value is None:
        return "none"
    if key == "default" and isinstance(value, dict):
        if "callable" in value:
            return f"{value['callable']}()"
        if "value" in value:
            return repr(value["value"])
        return str(value.get("repr"))
    if key == "relation" and isinstance(value, dict):
        return f"{value.get('table')}.{value.get('column')}"
    return str(value)


def _hashed(key: str, value: Any) -> Any:
    if key == "relation" and isinstance(value, dict):
        return {k: value.get(k) for k in HASHED_RELATION_KEYS}
    return value
