"""Which field values never leave the database through audit entries and slow-node logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist

from django_dataflow import conf

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

#: What a redacted value is replaced with.
REDACTED = "[redacted]"
#: Param names of bulk rows: logged as a row count, never as values.
_ROW_PARAMS = frozenset({"data"})


def redacted_names(entry: ModelEntry) -> frozenset[str]:
    """Field names (and attnames) of entry's model kept out: its exclude_fields and AUDIT_REDACT."""
    names = set(entry.exclude_fields)
    prefix = entry.label.lower() + "."
    for item in conf.audit_redact():
        if "." not in item:
            names.add(item)
        elif item.lower().startswith(prefix):
            names.add(item[len(prefix):])
    meta = entry.model._meta
    for name in list(names):
        try:
            names.add(meta.get_field(name).attname)  # type: ignore[union-attr]
        except FieldDoesNotExist:  # a name of another model: nothing to resolve
            continue
    return frozenset(names)


def redact(values: Any, names: frozenset[str]) -> Any:
    """A copy of values (records, filters, params) with the value under any hidden name replaced;
    a dotted filter name counts by its last part ('customer.password')."""
    if isinstance(values, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and key.rsplit(".", 1)[-1] in names else redact(v, names)
            for key, v in values.items()
        }
    if isinstance(values, (list, tuple)):
        return [redact(v, names) for v in values]
    return values


def loggable_params(entry: ModelEntry, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params fit for a log line: hidden fields redacted, bulk rows summarised by their count."""
    shown = {}
    for key, value in params.items():
        if key in _ROW_PARAMS:
            shown[key] = f"<{len(value)} rows>" if isinstance(value, (list, tuple)) else "<stream>"
        else:
            shown[key] = value
    return redact(shown, redacted_names(entry))
