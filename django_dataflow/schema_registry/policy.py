"""DATAFLOW["ALLOW_MIGRATIONS"] = False: this process never changes the tables of registered models.

Several applications sharing a database should have one of them apply the migrations of the shared
models. The others set ALLOW_MIGRATIONS to false; their `migrate` then refuses any plan touching a
registered model and names the application that records itself as allowed to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from django.core.management.base import CommandError
from django.db import DatabaseError
from django.db.migrations import operations as ops

from django_dataflow import conf
from django_dataflow.registry import ModelEntry, registry


def registered_model_keys() -> dict[tuple[str, str], ModelEntry]:
    """(app_label, lowercased model name) -> entry, for every managed code-registered model."""
    return {
        (e.model._meta.app_label, e.model.__name__.lower()): e  # Options.model_name, typed str | None
        for e in registry().entries()
        if not e.dynamic and e.model._meta.managed
    }


def operation_models(operation: Any) -> list[str]:
    """Lowercased names of the models an operation changes (both names of a rename)."""
    if isinstance(operation, ops.SeparateDatabaseAndState):
        return [name for inner in operation.database_operations for name in operation_models(inner)]
    if isinstance(operation, ops.RenameModel):
        return [operation.old_name_lower, operation.new_name_lower]
    if isinstance(getattr(operation, "model_name_lower", None), str):  # fields, indexes, constraints
        return [operation.model_name_lower]
    if isinstance(operation, ops.models.ModelOperation):
        return [operation.name_lower]
    return []


class Forbidden(NamedTuple):
    """A migration of the plan that changes registered models."""

    migration: str  # 'app_label.0002_name'
    models: list[str]  # 'app_label.model' (or 'app_label (RunPython/RunSQL)')
    tables: set[str]


def forbidden_migrations(plan: Iterable[tuple[Any, bool]]) -> list[Forbidden]:
    """Each migration of the plan that changes a registered model; RunSQL/RunPython in an app
    holding registered models counts too (it may)."""
    keys = registered_model_keys()
    apps_with_models = {app_label for app_label, _ in keys}
    found = []
    for migration, _backwards in plan:
        touched: set[str] = set()
        tables: set[str] = set()
        for operation in migration.operations:
            for name in operation_models(operation):
                entry = keys.get((migration.app_label, name))
                if entry is not None:
                    touched.add(entry.label)
                    tables.add(entry.model._meta.db_table)
            if isinstance(operation, (ops.RunPython, ops.RunSQL)) and migration.app_label in apps_with_models:
                touched.add(f"{migration.app_label} (RunPython/RunSQL)")
                tables |= {
                    e.model._meta.db_table for (label, _), e in keys.items() if label == migration.app_label
                }
        if touched:
            found.append(Forbidden(f"{migration.app_label}.{migration.name}", sorted(touched), tables))
    return found


def allowed_applications(tables: Iterable[str], using: str) -> list[str]:
    """Applications that recorded these tables from code with ALLOW_MIGRATIONS true."""
    from django_dataflow.models import RegisteredModel
    from django_dataflow.schema_registry.store import registry_table_ready

    try:
        if not registry_table_ready(using):
            return []
        rows = RegisteredModel.objects.using(using).filter(
            db_table__in=list(tables), migrates=True, managed=True, dynamic=False
        ).exclude(application=conf.application())
        return sorted(set(rows.values_list("application", flat=True)))
    except DatabaseError:
        return []


def refuse_if_forbidden(plan: Iterable[tuple[Any, bool]], *, using: str) -> None:
    """Raise CommandError when ALLOW_MIGRATIONS is false and the plan touches registered models."""
    if conf.allow_migrations():
        return
    forbidden = forbidden_migrations(plan)
    if not forbidden:
        return
    allowed = allowed_applications(set().union(*(f.tables for f in forbidden)), using)
    listed = "; ".join(f"{f.migration} ({', '.join(f.models)})" for f in forbidden)
    who = (
        f"Application(s) allowed to apply them, per the model registry: {', '.join(map(repr, allowed))}."
        if allowed
        else "No application has recorded itself as allowed to apply them yet (the registry table "
        "has no row with ALLOW_MIGRATIONS true for these tables)."
    )
    raise CommandError(
        f"migrate refused: DATAFLOW['ALLOW_MIGRATIONS'] is false in application "
        f"{conf.application()!r}, and the plan changes dataflow-registered models: {listed}. {who} "
        "Run migrate there, or set ALLOW_MIGRATIONS to true in this application's settings."
    )
