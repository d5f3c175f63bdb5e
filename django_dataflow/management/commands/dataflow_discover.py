"""manage.py dataflow_discover: models other applications registered that this one has no code for,
or existing tables (--tables); load them as dynamic models, record them, or write their code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_dataflow import conf
from django_dataflow.exceptions import RegistryError


class Command(BaseCommand):
    """List, --load, --record or --write models found in the registry table or in the database."""

    help = (
        "List the registry table's models this application has no code for (or, with --tables, "
        "existing tables); --load builds them as dynamic models with nodes, --record records them "
        "as this application's baseline for the drift check, --write writes their model code."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Source (registry or --tables), filters and actions."""
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")
        parser.add_argument(
            "--model", action="append", default=[], metavar="LABEL",
            help="Only this model ('app_label.Model' or node name); repeatable.",
        )
        parser.add_argument(
            "--application", help="Only models recorded by this application (default: any, the owner's row)."
        )
        parser.add_argument(
            "--tables", nargs="+", metavar="PATTERN",
            help="Introspect existing tables matching shell-style patterns ('legacy_*') instead.",
        )
        parser.add_argument(
            "--app-label", default="legacy", help="App label of models made from --tables (default: legacy)."
        )
        parser.add_argument(
            "--load", action="store_true", help="Build them as dynamic models; list their node types."
        )
        parser.add_argument(
            "--record", action="store_true",
            help="Record the registry models as this application's baseline (the drift check compares it).",
        )
        parser.add_argument("--write", metavar="PATH", help="Write unmanaged, registered model code to PATH.")
        parser.add_argument("--force", action="store_true", help="Overwrite the --write file.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Find, then act."""
        alias = options["database"] or conf.database()
        if options["tables"] and options["record"]:
            raise CommandError("--record applies to registry models, not to --tables.")
        try:
            if options["tables"]:
                descriptions, skipped, origin = self.from_tables(options, alias)
            else:
                descriptions, skipped, origin = self.from_registry(options, alias)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.report(descriptions, skipped, alias, options)
        if options["write"]:
            self.write(descriptions, origin, options)
        if options["load"] or options["record"]:
            self.load(descriptions, options, alias)
        if options["record"]:
            from django_dataflow.schema_registry.store import record

            me = conf.application()
            results = record(descriptions, using=alias, application=me, migrates=False, dynamic=True)
            for result in results:
                self.stdout.write(f"  recorded {result.label} as used by {me!r} ({result.status})")

    def from_registry(self, options: dict[str, Any], alias: str) -> tuple[list[Any], list[Any], str]:
        """Owner rows of tables this process has no code for."""
        from django_dataflow.schema_registry.description import describe_row
        from django_dataflow.schema_registry.store import discoverable

        found = discoverable(alias, application=options["application"], labels=options["model"] or None)
        self.rows = found.candidates
        descriptions = [describe_row(row) for row in found.candidates.values()]
        return descriptions, [], f"the model registry (database {alias!r})"

    def from_tables(self, options: dict[str, Any], alias: str) -> tuple[list[Any], list[Any], str]:
        """Introspected tables matching the patterns."""
        from django_dataflow.schema_registry.introspection import describe_tables

        found = describe_tables(options["tables"], app_label=options["app_label"], using=alias)
        if not found.descriptions and not found.skipped:
            raise CommandError(f"No table matches {' '.join(options['tables'])} in database {alias!r}.")
        self.rows = {}
        return found.descriptions, found.skipped, f"tables {' '.join(options['tables'])} (database {alias!r})"

    def report(
        self, descriptions: list[Any], skipped: list[Any], alias: str, options: dict[str, Any]
    ) -> None:
        """The models found, as text or JSON."""
        from django_dataflow.schema_registry.diff import summarize_field

        if options["json"]:
            self.stdout.write(json.dumps(
                {
                    "models": [
                        {"model": d.label, "table": d.table, "node_name": d.node_name, "fields": d.fields,
                         "schema_hash": d.schema_hash, **self.recorded(d)}
                        for d in descriptions
                    ],
                    "skipped": [{"table": t, "reason": r} for t, r in skipped],
                },
                indent=2,
            ))
            return
        source = "tables" if options["tables"] else f"registry models with no code in {conf.application()!r}"
        heading = f"Found {len(descriptions)} {source} (database {alias!r}):"
        self.stdout.write(self.style.MIGRATE_HEADING(heading))
        for d in descriptions:
            recorded = self.recorded(d)
            where = (
                f", version {recorded['version']} recorded by {recorded['application']!r}"
                f" {recorded['last_registered']}" if recorded else ""
            )
            self.stdout.write(f"  {d.label}  table {d.table}  nodes {d.node_name}*Node{where}")
            for item in d.fields:
                self.stdout.write(f"      {item['name']}: {summarize_field(item)}")
        for table, reason in skipped:
            self.stdout.write(self.style.WARNING(f"  skipped {table}: {reason}"))

    def recorded(self, description: Any) -> dict[str, Any]:
        """Version, recording application and time of a registry model ({} for tables)."""
        row = self.rows.get(description.table)
        if row is None:
            return {}
        return {"version": row.version, "application": row.application,
                "last_registered": row.last_registered.strftime("%Y-%m-%d %H:%M")}

    def load(self, descriptions: list[Any], options: dict[str, Any], alias: str) -> None:
        """Build and register them here; print their node types."""
        from django_dataflow.schema_registry.dynamic import load_introspected, load_registered

        try:
            if options["tables"]:
                loaded = load_introspected(options["tables"], app_label=options["app_label"], using=alias)
            else:
                loaded = load_registered(
                    [d.label for d in descriptions], using=alias, application=options["application"]
                )
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        for entry in loaded:
            self.stdout.write(f"  loaded {entry.label}: {', '.join(entry.type_names())}")

    def write(self, descriptions: list[Any], origin: str, options: dict[str, Any]) -> None:
        """Write the model code, refusing to overwrite without --force."""
        from django_dataflow.schema_registry.model_code import model_source

        path = Path(options["write"])
        if path.exists() and not options["force"]:
            raise CommandError(f"{path} exists; pass --force to overwrite it.")
        if not path.parent.is_dir():
            raise CommandError(f"Directory {path.parent} does not exist.")
        if not descriptions:
            raise CommandError("Nothing to write: no model was found.")
        code_labels = {m._meta.db_table: m._meta.label for m in apps.get_models()}
        source = model_source(descriptions, code_labels=code_labels, origin=origin)
        compile(source, str(path), "exec")  # never write a file that cannot be imported
        path.write_text(source)
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(descriptions)} model(s) to {path}."))
