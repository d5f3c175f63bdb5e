"""Drift between registered models, their migrations, the database and other applications.

One function, find_drift(), serves the system check (manage.py check) and manage.py dataflow_check:

  W101  a registered model's app has unapplied migrations
  W102  a registered model's app has model changes without a migration (makemigrations --check)
  W103  this application's schema of a table differs from another application's record of it
  W104  a registered model's table or some of its columns do not exist
  I101  the database could not be reached: the database checks were skipped
  I102  the registry table is not migrated yet: the comparison with other applications was skipped
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ProjectState

from django_dataflow import conf
from django_dataflow.registry import ModelEntry, registry
from django_dataflow.schema_registry.description import ModelDescription, describe_entry, describe_row
from django_dataflow.schema_registry.diff import diff_fields, render_diff

#: Unapplied migrations listed per app; the rest are counted.
SHOWN = 5


@dataclass
class Finding:
    """One drift problem; `details` are the lines of a readable diff or list."""

    id: str
    obj: str
    message: str
    hint: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def is_drift(self) -> bool:
        """Warnings are drift; infos say a part of the check could not run."""
        return ".W" in self.id

    def text(self) -> str:
        """The message followed by its detail lines."""
        return "\n".join([self.message, *self.details])


def find_drift(app_labels: Iterable[str] | None = None, using: str | None = None) -> list[Finding]:
    """Every finding for the registered models (of app_labels, when given)."""
    alias = using or conf.database()
    labels = set(app_labels) if app_labels is not None else None
    entries = [e for e in registry().entries() if labels is None or e.model._meta.app_label in labels]
    code = [e for e in entries if not e.dynamic]
    if not entries:
        return []
    connection = connections[alias]
    try:
        connection.ensure_connection()
    except Exception as exc:  # a check must never break start-up: say what was skipped instead
        return [
            Finding(
                "django_dataflow.I101", alias,
                f"Drift checks skipped: database {alias!r} is not reachable ({type(exc).__name__}: {exc}).",
            )
        ]
    findings = migration_findings(connection, code)
    # A table whose app has unapplied migrations is expected to be missing: W101 says it already.
    pending = {f.obj for f in findings if f.id == "django_dataflow.W101"}
    findings += table_findings(connection, [e for e in entries if e.model._meta.app_label not in pending])
    findings += application_findings(alias, code, labels)
    return findings


def migration_findings(connection: Any, entries: list[ModelEntry]) -> list[Finding]:
    """W101 unapplied migrations and W102 missing ones, for the apps holding registered models."""
    by_app: dict[str, list[str]] = {}
    for entry in entries:
        by_app.setdefault(entry.model._meta.app_label, []).append(entry.label)
    if not by_app:
        return []
    executor = MigrationExecutor(connection)
    loader = executor.loader
    findings = []
    leaves = [node for node in loader.graph.leaf_nodes() if node[0] in by_app]
    pending: dict[str, list[str]] = {}
    for migration, backwards in executor.migration_plan(leaves):
        if migration.app_label in by_app and not backwards:
            pending.setdefault(migration.app_label, []).append(migration.name)
    for app_label, names in sorted(pending.items()):
        findings.append(
            Finding(
                "django_dataflow.W101", app_label,
                f"App {app_label!r} has {len(names)} unapplied migration(s) on database "
                f"{connection.alias!r}; registered models there: {', '.join(sorted(by_app[app_label]))}.",
                hint="Run manage.py dataflow_migrate --plan to see each operation's risk, then migrate "
                "(from the application allowed to).",
                details=[f"    {app_label}.{name}" for name in names[:SHOWN]]
                + ([f"    ... and {len(names) - SHOWN} more"] if len(names) > SHOWN else []),
            )
        )
    autodetector = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps),
        MigrationQuestioner(specified_apps=set(by_app), dry_run=True),
    )
    changes = autodetector.changes(graph=loader.graph, trim_to_apps=set(by_app), convert_apps=set(by_app))
    for app_label, migrations in sorted(changes.items()):
        if app_label not in by_app:
            continue
        operations = [op.describe() for migration in migrations for op in migration.operations]
        findings.append(
            Finding(
                "django_dataflow.W102", app_label,
                f"App {app_label!r} has model changes without a migration (makemigrations --check "
                f"would fail); registered models there: {', '.join(sorted(by_app[app_label]))}.",
                hint=f"Run manage.py makemigrations {app_label}.",
                details=[f"    {text}" for text in operations],
            )
        )
    return findings


def table_findings(connection: Any, entries: list[ModelEntry]) -> list[Finding]:
    """W104: a registered model's table, or some of its columns, missing in the database."""
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor, include_views=True))
        findings = []
        for entry in entries:
            concrete = entry.model._meta.concrete_model
            assert concrete is not None  # ModelBase sets it on every model class (itself unless a proxy)
            meta = concrete._meta
            if meta.db_table not in tables:
                findings.append(
                    Finding(
                        "django_dataflow.W104", entry.label,
                        f"Table {meta.db_table!r} of registered model {entry.label} does not exist in "
                        f"database {connection.alias!r}.",
                        hint="Apply its migrations, or point db_table at the right table.",
                    )
                )
                continue
            columns = {c.name for c in connection.introspection.get_table_description(cursor, meta.db_table)}
            missing = [f for f in meta.local_concrete_fields if f.column not in columns]
            if missing:
                findings.append(
                    Finding(
                        "django_dataflow.W104", entry.label,
                        f"Table {meta.db_table!r} of registered model {entry.label} lacks "
                        f"{len(missing)} column(s) the model declares.",
                        hint="Apply its migrations; another application may have changed the table.",
                        details=[f"    - {f.column} ({f.name}: {f.get_internal_type()})" for f in missing],
                    )
                )
    return findings


def application_findings(alias: str, entries: list[ModelEntry], labels: set[str] | None) -> list[Finding]:
    """W103: this application's view of a table differs from another application's record.

    This application's view is its code, or, for tables it has no code for, the copy it recorded
    with dataflow_discover --record (a discovered model it relies on).
    """
    from django_dataflow.schema_registry.store import all_rows, registry_table_ready

    if not registry_table_ready(alias):
        return [
            Finding(
                "django_dataflow.I102", alias,
                f"The model registry table is not migrated in database {alias!r} yet: registered "
                "models were not compared with other applications' records.",
                hint="Run manage.py migrate django_dataflow.",
            )
        ]
    me = conf.application()
    rows = all_rows(alias)
    mine: dict[str, tuple[ModelDescription, str]] = {}
    for entry in entries:
        described = describe_entry(entry)
        mine[described.table] = (described, "code")
    for row in rows:
        if row.application == me and row.dynamic and row.db_table not in mine:
            if labels is None or row.app_label in labels:
                mine[row.db_table] = (describe_row(row), f"recorded copy, version {row.version}")
    findings = []
    for row in rows:
        if row.application == me or row.db_table not in mine or row.dynamic:
            continue
        here, source = mine[row.db_table]
        if here.schema_hash == row.schema_hash:
            continue
        changes = diff_fields(here.fields, row.fields)
        findings.append(
            Finding(
                "django_dataflow.W103", here.label,
                f"{here.label} (table {row.db_table}): this application ({me!r}, {source}) and "
                f"application {row.application!r} ({row.label}, version {row.version}, recorded "
                f"{row.last_registered:%Y-%m-%d %H:%M}) disagree on its schema; "
                f"here -> {row.application!r}:",
                hint="Bring the two applications' models together (dataflow_discover --write or "
                "--record writes or records the current schema), then migrate from the owner.",
                details=render_diff(changes) or ["    (the fields agree; the table's options differ)"],
            )
        )
    return findings
