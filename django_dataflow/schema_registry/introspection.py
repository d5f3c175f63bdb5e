"""Existing tables -> descriptions, read with Django's introspection as inspectdb reads them.

inspectdb's column-name and field-type rules are reused through its command's helper methods
(get_field_type, normalize_col_name), so a table gives the fields inspectdb would print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from django.core.management.commands.inspectdb import Command as InspectDb
from django.db import DatabaseError, connections

from django_dataflow.schema_registry.description import ModelDescription


@dataclass
class TablesFound:
    """The tables matching the patterns: described, or skipped with the reason."""

    patterns: list[str]
    descriptions: list[ModelDescription] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def model_name_for(table: str) -> str:
    """'legacy_customer' -> 'LegacyCustomer' (inspectdb's rule)."""
    name = re.sub(r"[^a-zA-Z0-9]", "", table.title())
    return name if name[:1].isalpha() else f"T{name}"


def describe_tables(patterns: str | Iterable[str], *, app_label: str, using: str) -> TablesFound:
    """Describe every table (not view) whose name matches one of the shell-style patterns."""
    wanted = [patterns] if isinstance(patterns, str) else list(patterns)
    found = TablesFound(wanted)
    connection = connections[using]
    helper = InspectDb()
    with connection.cursor() as cursor:
        names = [t.name for t in connection.introspection.get_table_list(cursor) if t.type == "t"]
        for table in sorted(n for n in names if any(fnmatchcase(n, p) for p in wanted)):
            try:
                result = _describe_table(connection, cursor, helper, table, app_label)
            except (DatabaseError, NotImplementedError) as exc:
                result = f"cannot be introspected: {exc}"
            if isinstance(result, str):
                found.skipped.append((table, result))
            else:
                found.descriptions.append(result)
    return found


def _describe_table(
    connection: Any, cursor: Any, helper: InspectDb, table: str, app_label: str
) -> ModelDescription | str:
    introspection = connection.introspection
    pk_columns = introspection.get_primary_key_columns(cursor, table) or []
    if len(pk_columns) != 1:
        return "no primary key" if not pk_columns else "a composite primary key (nodes need one column)"
    try:
        relations = introspection.get_relations(cursor, table)
    except NotImplementedError:
        relations = {}
    constraints = introspection.get_constraints(cursor, table)
    single = [c for c in constraints.values() if len(c["columns"]) == 1]
    unique = {c["columns"][0] for c in single if c["unique"]}
    indexed = {c["columns"][0] for c in single if c["index"] and not c["unique"]}
    used: list[str] = []
    fields = []
    for row in introspection.get_table_description(cursor, table):
        is_relation = row.name in relations
        name, _params, _notes = helper.normalize_col_name(row.name, used, is_relation)
        used.append(name)
        field_type, type_params, _notes = helper.get_field_type(connection, table, row)
        is_pk = row.name == pk_columns[0]
        item: dict[str, Any] = {
            "name": name,
            "column": row.name,
            "null": bool(row.null_ok) and not is_pk,  # SQLite reports its rowid key as nullable
            "blank": bool(row.null_ok) and not is_pk,
            "unique": is_pk or row.name in unique,
            "primary_key": is_pk,
            "db_index": row.name in indexed,
        }
        if is_relation:
            ref_column, ref_table = relations[row.name][:2]  # Django 6.1 adds the database on_delete
            kind = "OneToOneField" if item["unique"] else "ForeignKey"
            relation = {
                "table": ref_table, "column": ref_column, "on_delete": "DO_NOTHING",
                "column_type": field_type, "column_max_length": type_params.get("max_length"),
            }
            if ref_column != introspection.get_primary_key_column(cursor, ref_table):
                relation["to_field"] = helper.normalize_col_name(ref_column, [], False)[0]
            item |= {"type": kind, "class": f"django.db.models.{kind}", "relation": relation}
        else:
            path = field_type if "." in field_type else f"django.db.models.{field_type}"
            item |= {"type": field_type.rsplit(".", 1)[-1], "class": path}
            item |= {
                k: type_params[k] for k in ("max_length", "max_digits", "decimal_places") if k in type_params
            }
        fields.append({k: v for k, v in item.items() if v is not None})
    name = model_name_for(table)
    return ModelDescription(
        app_label=app_label, model_name=name, node_name=name, table=table, fields=fields, managed=False
    )
