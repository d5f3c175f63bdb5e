"""manage.py dataflow_migrate: migrate, after showing each operation's risk; HIGH needs a flag."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.executor import MigrationExecutor

from django_dataflow import conf


class Command(BaseCommand):
    """--plan prints the pending operations with LOW/MEDIUM/HIGH; applying refuses HIGH without
    --allow-data-loss, and follows DATAFLOW['ALLOW_MIGRATIONS'] like migrate does."""

    help = (
        "Show pending migration operations with their risk (LOW, MEDIUM, HIGH) and apply them; "
        "HIGH-risk operations (data loss) need --allow-data-loss."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Targets as for migrate, --plan, --allow-data-loss, --database."""
        parser.add_argument("app_label", nargs="?", help="Migrate this app only.")
        parser.add_argument(
            "migration_name", nargs="?", help="Migrate to this migration ('zero' to unapply all)."
        )
        parser.add_argument("--plan", action="store_true", help="Only show the plan and its risks.")
        parser.add_argument(
            "--allow-data-loss", action="store_true", help="Apply even when an operation is HIGH risk."
        )
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Show the plan, then refuse or migrate."""
        from django_dataflow.schema_registry.policy import refuse_if_forbidden
        from django_dataflow.schema_registry.risk import Risk, plan_operations

        alias = options["database"] or conf.database()
        connection = connections[alias]
        executor = MigrationExecutor(connection)
        targets = self.targets(executor, options["app_label"], options["migration_name"])
        planned = plan_operations(connection, targets)
        if not planned:
            self.stdout.write("No migrations to apply.")
            return
        self.show(planned, alias)
        highest = max(p.risk for p in planned)
        high = [p for p in planned if p.risk is Risk.HIGH]
        if options["plan"]:
            if high:
                self.stdout.write(
                    f"{len(high)} HIGH-risk operation(s): applying needs --allow-data-loss."
                )
            return
        if high and not options["allow_data_loss"]:
            raise CommandError(
                f"Refused: {len(high)} HIGH-risk operation(s) can lose data "
                f"({'; '.join(f'{p.migration}: {p.description}' for p in high)}). "
                "Back the data up, then run again with --allow-data-loss."
            )
        refuse_if_forbidden(executor.migration_plan(targets), using=alias)
        self.stdout.write(f"Applying (highest risk {highest.name}).")
        migrate_args = [a for a in (options["app_label"], options["migration_name"]) if a]
        call_command(
            "migrate", *migrate_args, database=alias, interactive=False,
            verbosity=options["verbosity"], stdout=self.stdout, stderr=self.stderr,
        )

    def targets(self, executor: MigrationExecutor, app_label: str | None, name: str | None) -> list[Any]:
        """migrate's targets for these arguments."""
        loader = executor.loader
        if app_label is None:
            return loader.graph.leaf_nodes()
        if app_label not in loader.migrated_apps:
            raise CommandError(f"App {app_label!r} does not have migrations.")
        if name is None:
            return [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
        if name == "zero":
            return [(app_label, None)]
        try:
            migration = loader.get_migration_by_prefix(app_label, name)
        except AmbiguityError:
            raise CommandError(f"More than one migration of {app_label!r} matches {name!r}.") from None
        except KeyError:
            raise CommandError(f"No migration of {app_label!r} matches {name!r}.") from None
        return [(app_label, migration.name)]

    def show(self, planned: list[Any], alias: str) -> None:
        """The plan, one operation a line, grouped by migration."""
        self.stdout.write(self.style.MIGRATE_HEADING(f"Planned operations (database {alias!r}):"))
        styles = {1: self.style.SUCCESS, 2: self.style.WARNING, 3: self.style.ERROR}
        current = None
        for item in planned:
            if item.migration != current:
                current = item.migration
                self.stdout.write(f"  {current}")
            mark = "*" if item.registered else " "
            risk = styles[item.risk](f"{item.risk.name:<6}")
            self.stdout.write(f"   {mark} {risk} {item.description}: {item.reason}")
        if any(item.registered for item in planned):
            self.stdout.write("  (* changes a dataflow-registered model)")
