"""manage.py dataflow_check: drift of registered models, as a readable report; exit 1 on drift."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_dataflow import conf


class Command(BaseCommand):
    """The drift system checks as a CI gate: 0 no drift, 1 drift, 2 the database was unreachable."""

    help = (
        "Compare registered models with their migrations, the database and other applications' "
        "records; print a readable diff and exit 1 on drift (2 when the database is unreachable)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Optional app labels, --database, --json."""
        parser.add_argument("app_label", nargs="*", help="Only the registered models of these apps.")
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Report, then exit with the status."""
        from django_dataflow.schema_registry.drift import find_drift

        alias = options["database"] or conf.database()
        findings = find_drift(options["app_label"] or None, using=alias)
        unreachable = any(f.id == "django_dataflow.I101" for f in findings)
        drift = [f for f in findings if f.is_drift]
        if options["json"]:
            rows = [
                {"id": f.id, "object": f.obj, "message": f.message,
                 "details": [line.strip() for line in f.details], "hint": f.hint}
                for f in findings
            ]
            self.stdout.write(json.dumps(rows, indent=2))
        else:
            for finding in findings:
                style = self.style.WARNING if finding.is_drift else self.style.NOTICE
                self.stdout.write(style(f"[{finding.id.rsplit('.', 1)[1]}] {finding.message}"))
                for line in finding.details:
                    self.stdout.write(line)
                if finding.hint:
                    self.stdout.write(f"    hint: {finding.hint}")
            if unreachable:
                self.stdout.write(self.style.ERROR("Could not check: the database is not reachable."))
            elif drift:
                self.stdout.write(self.style.ERROR(f"Drift: {len(drift)} problem(s)."))
            else:
                self.stdout.write(self.style.SUCCESS(
                    f"No drift: application {conf.application()!r}, database {alias!r}."
                ))
        if unreachable:
            sys.exit(2)
        if drift:
            sys.exit(1)
