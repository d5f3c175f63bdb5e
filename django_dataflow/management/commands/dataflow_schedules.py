"""manage.py dataflow_schedules: list workflow schedules with their next run; --sync rebuilds them;
--triggers lists the model-change triggers (on_commit_of() and stored rows) instead."""

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
        "the definitions and deletes PeriodicTasks whose schedule is gone. --triggers lists the "
        "model-change triggers instead: on_commit_of() calls of this process and stored "
        "ModelTriggerRule rows. Exit codes: 0 done, 1 django-celery-beat missing or a database "
        "error, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """--sync, --triggers, --database."""
        parser.add_argument(
            "--sync", action="store_true",
            help="Rebuild the PeriodicTasks from the definitions' schedules before listing.",
        )
        parser.add_argument(
            "--triggers", action="store_true",
            help="List the model-change triggers (code and stored rows) instead of the schedules.",
        )
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Sync when asked, then one line per schedule; exit 1 on a missing library or database error."""
        from django_dataflow.models import DefinitionSchedule
        from django_dataflow.triggers import schedules

        alias = options["database"] or conf.database()
        if options["triggers"]:
            if options["sync"]:
                raise CommandError("--sync rebuilds schedules; it cannot be combined with --triggers",
                                   returncode=2)
            self._triggers(alias)
            return
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

    def _triggers(self, alias: str) -> None:
        """One line per code trigger of this process, then per stored row (disabled ones too)."""
        import json

        from django_dataflow.models import ModelTriggerRule
        from django_dataflow.triggers.model_events import registered

        code = [t for t in registered() if t.rule is None]
        try:
            rows = list(ModelTriggerRule.objects.using(alias).select_related("definition"))
        except DatabaseError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        for trigger in code:
            per_row = "per_row" if trigger.per_row else "-"
            self.stdout.write(
                f"code    {trigger.label:<28} {trigger.event:<8} -> {trigger.definition:<24} {per_row}"
            )
        for row in rows:
            per_row = "per_row" if row.per_row else "-"
            state = "enabled" if row.enabled else "disabled"
            inputs = json.dumps(row.inputs, sort_keys=True)
            self.stdout.write(
                f"row {row.pk:<4}{row.model:<28} {row.event:<8} -> {row.definition.name:<24} {per_row:<8}"
                f"{state:<8} inputs={inputs}"
            )
        self.stdout.write(f"{len(code)} code trigger(s), {len(rows)} stored trigger(s)")

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
