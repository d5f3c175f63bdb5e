"""manage.py dataflow_schedules: list workflow schedules with their next run; --sync rebuilds them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from django_dataflow import conf


class Command(BaseCommand):
    """List DefinitionSchedule rows (definition, when, tenant, overlap, next run, skipped fires)."""

    help = (
        "List the workflow definitions' schedules with their next run time (from their "
        "django-celery-beat PeriodicTask). --sync first rebuilds every schedule's PeriodicTask from "
        "the definitions and deletes PeriodicTasks whose schedule is gone. Exit codes: 0 done, "
        "1 django-celery-beat missing or a database error, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """--sync, --database."""
        parser.add_argument(
            "--sync", action="store_true",
            help="Rebuild the PeriodicTasks from the definitions' schedules before listing.",
        )
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Sync when asked, then one line per schedule; exit 1 on a missing library or database error."""
        from django_dataflow.models import DefinitionSchedule
        from django_dataflow.triggers import schedules

        alias = options["database"] or conf.database()
        try:
            if options["sync"]:
                result = schedules.sync_all(alias)
                self.stdout.write(
                    f"synced {result.written} schedule(s); removed {result.removed} stale periodic task(s)"
                )
            rows = list(DefinitionSchedule.objects.using(alias).select_related("definition"))
            lines = [self._line(row, schedules.next_run(row)) for row in rows]
        except (ImproperlyConfigured, DatabaseError) as exc:
            raise CommandError(str(exc), returncode=1) from exc
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(f"{len(rows)} schedule(s)")

    @staticmethod
    def _line(row: Any, due: Any) -> str:
        when = f"cron {row.crontab}" if row.crontab else f"every {row.interval_seconds}s"
        tenant = "all tenants" if row.all_tenants else (row.tenant or "-")
        state = "enabled" if row.enabled and row.definition.enabled else "disabled"
        next_text = f"{due:%Y-%m-%d %H:%M:%S%z}" if due is not None else "-"
        return (
            f"{row.pk:>4}  {row.definition.name:<24} {when:<22} tenant={tenant:<12} "
            f"overlap={row.overlap:<5} {state:<8} next={next_text}  skipped={row.skipped_fires}"
        )
