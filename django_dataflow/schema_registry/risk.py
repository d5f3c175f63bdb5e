"""The risk of each pending migration operation, for dataflow_migrate --plan.

LOW     no data can be lost and nothing existing can fail: a new table, a nullable column, an index,
        anything on a table created earlier in the same plan (it holds no rows yet)
MEDIUM  existing rows are rewritten or checked and the migration can fail, but no data is dropped:
        a non-null column, a widening type change, a new constraint, a rename other applications
        still use, RunPython/RunSQL (not analysed: review them)
HIGH    data can be lost: a dropped table or column, a narrowing or converting type change
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED

from django_dataflow.schema_registry.policy import operation_models, registered_model_keys


class Risk(IntEnum):
    """How much a pending operation can hurt existing data."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


@dataclass(frozen=True)
class PlannedOperation:
    """One operation of the migration plan, with its risk and why."""

    migration: str
    description: str
    risk: Risk
    reason: str
    registered: bool  # changes a dataflow-registered model


#: Internal type changes that keep every value: (from, to).
WIDENING = {
    ("SmallIntegerField", "IntegerField"), ("SmallIntegerField", "BigIntegerField"),
    ("IntegerField", "BigIntegerField"),
    ("PositiveSmallIntegerField", "PositiveIntegerField"),
    ("PositiveSmallIntegerField", "PositiveBigIntegerField"),
    ("PositiveIntegerField", "PositiveBigIntegerField"),
    ("SmallAutoField", "AutoField"), ("SmallAutoField", "BigAutoField"), ("AutoField", "BigAutoField"),
    ("CharField", "TextField"), ("SlugField", "TextField"), ("SlugField", "CharField"),
    ("FloatField", "DecimalField"),
}


def plan_operations(
    connection: Any, targets: Iterable[tuple[str, str | None]] | None = None
) -> list[PlannedOperation]:
    """Every operation migrate would run towards targets (default: every app's latest migration)."""
    executor = MigrationExecutor(connection)
    loader = executor.loader
    migration_plan = executor.migration_plan(list(targets) if targets else loader.graph.leaf_nodes())
    registered = registered_model_keys()
    created: set[tuple[str, str]] = set()
    planned = []
    for migration, backwards in migration_plan:
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        steps = []
        for operation in migration.operations:
            after = state.clone()
            operation.state_forwards(migration.app_label, after)
            steps.append((operation, state, after))
            state = after
        if backwards:
            steps.reverse()
        for operation, before, after in steps:
            if backwards:
                risk, reason = classify_backwards(operation, migration.app_label, before, after)
            else:
                risk, reason = classify(operation, migration.app_label, before, created)
            prefix = "Undo " if backwards else ""
            planned.append(
                PlannedOperation(
                    migration=f"{migration.app_label}.{migration.name}",
                    description=prefix + operation.describe(),
                    risk=risk,
                    reason=reason,
                    registered=any(
                        (migration.app_label, name) in registered for name in operation_models(operation)
                    ),
                )
            )
    return planned


def classify(
    operation: Any, app_label: str, before: ProjectState, created: set[tuple[str, str]]
) -> tuple[Risk, str]:
    """The risk of applying an operation to the state before it."""
    if isinstance(operation, ops.CreateModel):
        created.add((app_label, operation.name_lower))
        return Risk.LOW, "new table"
    models = operation_models(operation)
    if models and all((app_label, name) in created for name in models):
        return Risk.LOW, "its table is created earlier in this plan: no rows yet"
    if isinstance(operation, ops.SeparateDatabaseAndState):
        inner = [classify(op, app_label, before, created) for op in operation.database_operations]
        return max(inner, default=(Risk.LOW, "state only: no database change"))
    if isinstance(operation, ops.DeleteModel):
        return Risk.HIGH, "drops the table and every row in it"
    if isinstance(operation, ops.RemoveField):
        return Risk.HIGH, "drops the column and its data"
    if isinstance(operation, ops.AddField):
        return adding_risk(operation.field)
    if isinstance(operation, ops.AlterField):
        old = before.models[app_label, operation.model_name_lower].fields[operation.name]
        return altering_risk(old, operation.field)
    return _by_kind(operation)


def classify_backwards(
    operation: Any, app_label: str, before: ProjectState, after: ProjectState
) -> tuple[Risk, str]:
    """The risk of unapplying an operation (migrating back past it)."""
    if isinstance(operation, ops.CreateModel):
        return Risk.HIGH, "undoing it drops the table and every row in it"
    if isinstance(operation, ops.AddField):
        return Risk.HIGH, "undoing it drops the column and its data"
    if isinstance(operation, ops.DeleteModel):
        return Risk.LOW, "undoing it creates the table again (empty)"
    if isinstance(operation, ops.RemoveField):
        return adding_risk(before.models[app_label, operation.model_name_lower].fields[operation.name])
    if isinstance(operation, ops.AlterField):
        key, name = (app_label, operation.model_name_lower), operation.name
        return altering_risk(after.models[key].fields[name], before.models[key].fields[name])
    if isinstance(operation, ops.SeparateDatabaseAndState):
        inner = [classify_backwards(op, app_label, before, after) for op in operation.database_operations]
        return max(inner, default=(Risk.LOW, "state only: no database change"))
    return _by_kind(operation)


def adding_risk(field: Any) -> tuple[Risk, str]:
    """Adding a column."""
    if field.many_to_many:
        return Risk.LOW, "new join table"
    if field.null:
        return Risk.LOW, "nullable column"
    if field.has_default() or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
        return Risk.MEDIUM, "non-null column with a default: every existing row gets it"
    return Risk.MEDIUM, "non-null column without a default: fails if the table has rows"


def altering_risk(old: Any, new: Any) -> tuple[Risk, str]:
    """Changing a column from old to new."""
    found: list[tuple[Risk, str]] = []
    old_type, new_type = old.get_internal_type(), new.get_internal_type()
    if old_type != new_type:
        if (old_type, new_type) in WIDENING:
            found.append((Risk.MEDIUM, f"type {old_type} -> {new_type}: widening, rewrites the column"))
        else:
            found.append(
                (Risk.HIGH, f"type {old_type} -> {new_type}: values may be converted, cut or refused")
            )
    old_length, new_length = getattr(old, "max_length", None), getattr(new, "max_length", None)
    if old_type == new_type and old_length != new_length:
        if new_length is None or (old_length is not None and new_length > old_length):
            found.append((Risk.MEDIUM, f"max_length {old_length} -> {new_length}: widening"))
        else:
            found.append(
                (Risk.HIGH, f"max_length {old_length} -> {new_length}: narrowing, longer values are refused")
            )
    if old_type == new_type == "DecimalField":
        old_digits, new_digits = (old.max_digits, old.decimal_places), (new.max_digits, new.decimal_places)
        if old_digits != new_digits:
            whole_kept = new.max_digits - new.decimal_places >= old.max_digits - old.decimal_places
            text = f"numeric({old_digits[0]},{old_digits[1]}) -> numeric({new_digits[0]},{new_digits[1]})"
            if whole_kept and new.decimal_places >= old.decimal_places:
                found.append((Risk.MEDIUM, f"{text}: widening"))
            else:
                found.append((Risk.HIGH, f"{text}: narrowing, values are rounded or refused"))
    if old.null and not new.null:
        found.append((Risk.MEDIUM, "becomes NOT NULL: fails if rows hold NULL"))
    elif new.null and not old.null:
        found.append((Risk.LOW, "becomes nullable"))
    if new.unique and not old.unique:
        found.append((Risk.MEDIUM, "becomes unique: fails on duplicate values"))
    if not found:
        return Risk.LOW, "no column type change"
    risk = max(r for r, _ in found)
    return risk, "; ".join(text for _, text in found)


#: The risk of operations that need no field comparison, first match wins.
BY_KIND: tuple[tuple[tuple[type, ...], Risk, str], ...] = (
    ((ops.RenameField, ops.RenameModel), Risk.MEDIUM, "rename: other applications still use the old name"),
    ((ops.AlterModelTable,), Risk.MEDIUM, "renames the table: other applications still use the old name"),
    ((ops.AddIndex,), Risk.LOW, "new index (writes wait while it builds)"),
    ((ops.RemoveIndex, ops.RemoveConstraint), Risk.LOW, "drops an index or constraint, not data"),
    ((ops.AddConstraint,), Risk.MEDIUM, "new constraint: fails if existing rows break it"),
    ((ops.AlterUniqueTogether,), Risk.MEDIUM, "unique together: fails on duplicate rows"),
    ((ops.RunPython, ops.RunSQL), Risk.MEDIUM, "runs code or SQL that is not analysed: review it"),
    ((ops.AlterModelOptions, ops.AlterModelManagers), Risk.LOW, "no database change"),
)


def _by_kind(operation: Any) -> tuple[Risk, str]:
    for kinds, risk, reason in BY_KIND:
        if isinstance(operation, kinds):
            return risk, reason
    return Risk.MEDIUM, f"{type(operation).__name__} is not analysed: review it"
