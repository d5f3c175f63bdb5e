"""manage.py dataflow_sync: record this application's registered models in the registry table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_dataflow import conf
from django_dataflow.exceptions import RegistryError


class Command(BaseCommand):
    """What post_migrate does, on demand (e.g. for an application that never runs migrate)."""

    help = "Record this application's registered models (fields, schema hash, version) in the registry table."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """--database, --prune."""
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")
        parser.add_argument(
            "--prune", action="store_true",
            help="Also delete this application's rows for models it no longer registers.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Record, then report per model."""
        from django_dataflow.schema_registry.store import prune, sync

        alias = options["database"] or conf.database()
        try:
            results = sync(alias)
            pruned = prune(alias) if options["prune"] else []
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        application = conf.application()
        self.stdout.write(f"Application {application!r}, database {alias!r}:")
        for result in results:
            style = self.style.SUCCESS if result.status != "unchanged" else (lambda text: text)
            self.stdout.write(style(f"  {result.status:<10} {result.label}  version {result.version}"))
        for label in pruned:
            self.stdout.write(self.style.WARNING(f"  pruned     {label}"))
        if not results:
            self.stdout.write("  no registered models")
