"""Reading and writing the registry table: one RegisteredModel row per (application, model), one
ModelSchemaVersion row per version. Written after migrate and by dataflow_sync, never at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone

from django_dataflow import conf
from django_dataflow.exceptions import RegistryError, valid_names
from django_dataflow.models import ModelSchemaVersion, RegisteredModel
from django_dataflow.registry import registry
from django_dataflow.schema_registry.description import ModelDescription, describe_entry


@dataclass(frozen=True)
class Recorded:
    """What recording one model did: created (version 1), changed (a new version) or unchanged."""

    label: str
    status: str
    version: int


def registry_table_ready(using: str) -> bool:
    """Whether both registry tables exist in this database (False before the app is migrated)."""
    if not router.allow_migrate_model(using, RegisteredModel):
        return False
    tables = set(connections[using].introspection.table_names())
    return {RegisteredModel._meta.db_table, ModelSchemaVersion._meta.db_table} <= tables


def require_registry_table(using: str) -> None:
    """Raise RegistryError, saying what to run, when the registry table is not migrated."""
    if not registry_table_ready(using):
        raise RegistryError(
            f"The model registry table {RegisteredModel._meta.db_table!r} does not exist in database "
            f"{using!r}; run 'manage.py migrate django_dataflow' first."
        )


def code_descriptions() -> list[ModelDescription]:
    """This process's registered models that come from code (not dynamic ones), described."""
    return [describe_entry(entry) for entry in registry().entries() if not entry.dynamic]


def sync(using: str | None = None) -> list[Recorded]:
    """Record every code-registered model of this application (post_migrate, dataflow_sync)."""
    alias = using or conf.database()
    require_registry_table(alias)
    return record(
        code_descriptions(), using=alias, application=conf.application(),
        migrates=conf.allow_migrations(),
    )


def record_after_migrate(using: str, *, verbosity: int = 1, stdout: Any = None) -> list[Recorded]:
    """post_migrate: record this application's models, if the registry table exists in this database."""
    if not registry_table_ready(using):  # e.g. migrate django_dataflow zero, or another database
        return []
    results = sync(using)
    if verbosity >= 2 and stdout is not None:
        changed = [r for r in results if r.status != "unchanged"]
        stdout.write(f"  Dataflow registry: {len(results)} model(s) recorded, {len(changed)} changed\n")
    return results


def record(
    descriptions: Iterable[ModelDescription],
    *,
    using: str,
    application: str,
    migrates: bool,
    dynamic: bool = False,
) -> list[Recorded]:
    """Create or update this application's rows; a changed hash adds a version to the history."""
    wanted = list(descriptions)
    for attempt in (1, 2):
        try:
            return _record(wanted, using, application, migrates, dynamic)
        except IntegrityError:
            # Another process of the same application created a row first; the retry sees it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record(
    descriptions: list[ModelDescription], using: str, application: str, migrates: bool, dynamic: bool
) -> list[Recorded]:
    # A handful of statements whatever the number of models: every migrate records them all.
    now = timezone.now()
    manager = RegisteredModel.objects.using(using)
    statuses: dict[tuple[str, str], str] = {}
    with transaction.atomic(using=using):
        rows = manager.select_for_update().filter(application=application)
        existing = {(r.app_label, r.model_name): r for r in rows}
        new_rows, saved, touched = [], [], []
        for description in descriptions:
            key = (description.app_label, description.model_name)
            digest = description.schema_hash
            values = {
                "node_name": description.node_name,
                "db_table": description.table,
                "hidden_fields": description.hidden_fields,
                "managed": description.managed and not dynamic,
                "dynamic": dynamic,
                "migrates": migrates and not dynamic,
            }
            row = existing.get(key)
            if row is None:
                new_rows.append(RegisteredModel(
                    application=application, app_label=key[0], model_name=key[1], fields=description.fields,
                    schema_hash=digest, version=1, first_registered=now, last_registered=now, **values,
                ))
                statuses[key] = "created"
                continue
            if row.schema_hash != digest:
                row.version += 1
                row.fields, row.schema_hash = description.fields, digest
                statuses[key] = "changed"
            else:
                statuses[key] = "unchanged"
            if statuses[key] == "changed" or any(getattr(row, k) != v for k, v in values.items()):
                for attr, value in values.items():
                    setattr(row, attr, value)
                row.last_registered = now
                saved.append(row)
            else:
                touched.append(row.pk)
        manager.bulk_create(new_rows)
        if any(row.pk is None for row in new_rows):  # a backend that returns no keys from bulk inserts
            keys = {(r.app_label, r.model_name) for r in new_rows}
            fetched = {(r.app_label, r.model_name): r for r in manager.filter(application=application)}
            new_rows = [fetched[key] for key in keys]
        for row in saved:
            row.save(using=using)
        if touched:
            manager.filter(pk__in=touched).update(last_registered=now)
        ModelSchemaVersion.objects.using(using).bulk_create(
            ModelSchemaVersion(
                registered_model=row, version=row.version, schema_hash=row.schema_hash, fields=row.fields,
                recorded_at=now,
            )
            for row in [*new_rows, *saved]
            if statuses[row.app_label, row.model_name] != "unchanged"
        )
        versions = {(r.app_label, r.model_name): r.version for r in [*new_rows, *saved]}
        versions |= {key: existing[key].version for key, status in statuses.items() if key in existing}
    return [
        Recorded(d.label, statuses[d.app_label, d.model_name], versions[d.app_label, d.model_name])
        for d in descriptions
    ]


def prune(using: str | None = None) -> list[str]:
    """Delete this application's code rows for models it no longer registers; labels deleted."""
    alias = using or conf.database()
    require_registry_table(alias)
    kept = {(d.app_label, d.model_name) for d in code_descriptions()}
    stale = [
        row for row in RegisteredModel.objects.using(alias).filter(
            application=conf.application(), dynamic=False
        )
        if (row.app_label, row.model_name) not in kept
    ]
    for row in stale:
        row.delete(using=alias)
    return [row.label for row in stale]


def all_rows(using: str) -> list[RegisteredModel]:
    """Every registry row, of every application."""
    require_registry_table(using)
    return list(RegisteredModel.objects.using(using).all())


def owner_rows(rows: Iterable[RegisteredModel]) -> dict[str, RegisteredModel]:
    """Per table, the row to trust: recorded from code by an application that migrates the table,
    else from code, else any; the most recent first."""
    best: dict[str, RegisteredModel] = {}
    for row in rows:
        current = best.get(row.db_table)
        if current is None or _rank(row) > _rank(current):
            best[row.db_table] = row
    return best


@dataclass(frozen=True)
class Discoverable:
    """Registry rows per table: the owners' rows, those of tables without code here, those chosen."""

    owners: dict[str, RegisteredModel]
    without_code: dict[str, RegisteredModel]
    candidates: dict[str, RegisteredModel]


def discoverable(
    using: str, *, application: str | None = None, labels: Iterable[str] | None = None
) -> Discoverable:
    """The owner rows of tables this process has no code for (recorded by application, when given),
    narrowed to labels or node names (case-insensitive); an unknown one is a RegistryError."""
    rows = all_rows(using)
    if application is not None:
        rows = [row for row in rows if row.application == application]
    owners = owner_rows(rows)
    with_code = tables_with_code()
    without_code = {table: row for table, row in sorted(owners.items()) if table not in with_code}
    if labels is None:
        return Discoverable(owners, without_code, without_code)
    wanted = {label.lower(): label for label in labels}
    chosen = {
        table: row for table, row in without_code.items()
        if row.label.lower() in wanted or row.node_name.lower() in wanted
    }
    found = {name.lower() for row in chosen.values() for name in (row.label, row.node_name)}
    missing = [label for key, label in wanted.items() if key not in found]
    if missing:
        has_code = [m for m in missing if any(
            m.lower() in (r.label.lower(), r.node_name.lower()) for r in owners.values()
        )]
        detail = f" ({', '.join(has_code)}: this process has code for it)" if has_code else ""
        raise RegistryError(
            f"The model registry has no model without code here named {', '.join(missing)}"
            f"{detail}; models to load: {valid_names(r.label for r in without_code.values())}."
        )
    return Discoverable(owners, without_code, chosen)


def _rank(row: RegisteredModel) -> tuple[bool, bool, object]:
    return (not row.dynamic, row.managed and row.migrates, row.last_registered)


def models_with_code() -> dict[str, type[models.Model]]:
    """Table -> this process's own model of it (a registered one first), for every coded table."""
    found = {m._meta.db_table: m for m in apps.get_models(include_auto_created=True) if not m._meta.proxy}
    found |= {e.model._meta.db_table: e.model for e in registry().entries() if not e.dynamic}
    return found


def tables_with_code() -> set[str]:
    """Tables some model class of this process's code maps (registered or not)."""
    return set(models_with_code())
