"""Descriptions -> Python source of unmanaged, registered models (dataflow_discover --write).

Written so that the models read back to the same schema hash as the descriptions: an application
using the file shares the tables with their owner, and the drift check compares both by hash.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.module_loading import import_string

from django_dataflow.schema_registry.description import ModelDescription

_ARG_ORDER = (
    "primary_key", "max_length", "max_digits", "decimal_places", "null", "blank", "unique",
    "db_index", "default", "auto_now", "auto_now_add", "to_field", "related_name", "db_column",
)


def class_names(descriptions: list[ModelDescription]) -> dict[str, str]:
    """Table -> class name; a model name used twice gets its app label in front."""
    counts: dict[str, int] = {}
    for d in descriptions:
        counts[d.model_name] = counts.get(d.model_name, 0) + 1
    return {
        d.table: d.model_name if counts[d.model_name] == 1 else _camel(d.app_label) + d.model_name
        for d in descriptions
    }


def model_source(descriptions: list[ModelDescription], *, code_labels: dict[str, str], origin: str) -> str:
    """A models module for descriptions; code_labels maps tables this project already has models
    for to their labels (relations to them point there)."""
    names = class_names(descriptions)
    imports: set[str] = set()
    classes = [_class_source(d, names, code_labels, imports) for d in descriptions]
    head = [
        f'"""Models written by manage.py dataflow_discover from {origin}.',
        "",
        "Unmanaged (managed = False): this application never migrates these tables. When their owner",
        "changes them, manage.py check reports it (django_dataflow.W103); write this file again.",
        '"""',
        "",
        *sorted(f"import {module}" for module in imports),
        *([""] if imports else []),
        "from django.db import models",
        "",
        "import django_dataflow",
    ]
    return "\n".join(head) + "\n\n\n" + "\n\n\n".join(classes) + "\n"


def _class_source(
    d: ModelDescription, names: dict[str, str], code_labels: dict[str, str], imports: set[str]
) -> str:
    class_name = names[d.table]
    options = []
    if d.node_name != class_name:
        options.append(f"name={d.node_name!r}")
    if d.hidden_fields:
        options.append(f"exclude_fields={list(d.hidden_fields)!r}")
    decorator = f"@django_dataflow.register({', '.join(options)})" if options else "@django_dataflow.register"
    lines = [decorator, f"class {class_name}(models.Model):", f'    """{d.label} (table {d.table})."""', ""]
    lines += ["    " + _field_source(f, names, code_labels, imports) for f in d.fields]
    lines += ["", "    class Meta:", "        managed = False", f"        db_table = {d.table!r}"]
    return "\n".join(lines)


def _field_source(
    item: dict[str, Any], names: dict[str, str], code_labels: dict[str, str], imports: set[str]
) -> str:
    relation = item.get("relation")
    kwargs: dict[str, Any] = {k: item[k] for k in ("max_length", "max_digits", "decimal_places") if k in item}
    for flag in ("primary_key", "null", "blank", "auto_now", "auto_now_add"):
        if item.get(flag):
            kwargs[flag] = True
    if item.get("unique") and not item.get("primary_key") and item.get("type") != "OneToOneField":
        kwargs["unique"] = True
    note = ""
    default = item.get("default")
    if default and "value" in default:
        kwargs["default"] = _Raw(repr(default["value"]))
    elif default and "callable" in default:
        path = default["callable"]
        if path.startswith("builtins.") and "." not in path[9:]:
            kwargs["default"] = _Raw(path[9:])
        elif _importable(path):
            imports.add(path.rsplit(".", 1)[0])
            kwargs["default"] = _Raw(path)
        else:
            note = f"  # default {path}() left out: not importable here"
    target = names.get(relation["table"]) or code_labels.get(relation["table"]) if relation else None
    if relation and target:
        kind = "OneToOneField" if item.get("type") == "OneToOneField" else "ForeignKey"
        for key in ("max_length", "max_digits", "decimal_places"):
            kwargs.pop(key, None)
        for key in ("to_field", "related_name"):
            if relation.get(key) and not (key == "to_field" and relation[key] == "id"):
                kwargs[key] = relation[key]
        if item["column"] != f"{item['name']}_id":
            kwargs["db_column"] = item["column"]
        on_delete = f"models.{relation.get('on_delete', 'DO_NOTHING')}"
        return f"{item['name']} = models.{kind}({target!r}, on_delete={on_delete}{_args(kwargs)}){note}"
    if relation:  # no model for the referenced table here: the column alone
        kwargs.pop("max_length", None)
        if relation.get("column_max_length"):
            kwargs["max_length"] = relation["column_max_length"]
        column_type = relation.get("column_type", "BigIntegerField")
        note = f"  # references {relation['table']}.{relation['column']}; no model for it here{note}"
        return f"{item['column']} = models.{column_type}({_args(kwargs, first=True)}){note}"
    if item.get("db_index") and not kwargs.get("unique") and not item.get("primary_key"):
        kwargs["db_index"] = True
    if item["column"] != item["name"]:
        kwargs["db_column"] = item["column"]
    return f"{item['name']} = {_class_expression(item, imports)}({_args(kwargs, first=True)}){note}"


class _Raw(str):
    """Source text written as is (not repr'd)."""


def _args(kwargs: dict[str, Any], first: bool = False) -> str:
    ordered = sorted(kwargs.items(), key=lambda kv: _ARG_ORDER.index(kv[0]))
    text = ", ".join(f"{k}={v if isinstance(v, _Raw) else repr(v)}" for k, v in ordered)
    if not text:
        return ""
    return text if first else ", " + text


def _class_expression(item: dict[str, Any], imports: set[str]) -> str:
    path = item.get("class") or ""
    if path.startswith("django.db.models.") and path.count(".") == 3 and _importable(path):
        return "models." + path.rsplit(".", 1)[1]
    if path and _importable(path):
        imports.add(path.rsplit(".", 1)[0])
        return path
    return f"models.{item.get('type', 'TextField')}"


def _importable(path: str) -> bool:
    if "<" in path:
        return False
    try:
        import_string(path)
    except ImportError:
        return False
    return True


def _camel(label: str) -> str:
    return "".join(part.title() for part in re.split(r"[^a-zA-Z0-9]", label) if part)
