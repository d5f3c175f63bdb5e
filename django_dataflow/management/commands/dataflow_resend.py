"""manage.py dataflow_resend: send the task message of Celery runs left pending once more."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_dataflow import conf, tenancy
from django_dataflow.management.arguments import positive, seconds


class Command(BaseCommand):
    """Recover runs whose broker message was lost; safe to run often (e.g. from cron or beat)."""

    help = (
        "Send again the task message of every Celery run still pending some time after it was "
        "submitted (its message was lost by the broker). Safe when the message was only slow: a run "
        "runs once whatever the number of deliveries. Exit codes: 0 all sent (or none stale), "
        "1 a send failed, 2 usage error. With django-tenants it looks in the public schema and in every "
        "tenant's schema, unless --tenant names one."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """--older-than, --queue, --limit, --dry-run, --database."""
        parser.add_argument(
            "--older-than", type=seconds, default=600.0, metavar="SECONDS",
            help="Only runs submitted at least this many seconds ago (default 600: above the longest "
            "time a message waits in the queue on a busy day).",
        )
        parser.add_argument(
            "--queue", default="",
            help="Queue to send to (the run rows do not record it; default DATAFLOW['CELERY_QUEUE']).",
        )
        parser.add_argument("--limit", type=positive, help="Send at most this many runs, oldest first.")
        parser.add_argument("--dry-run", action="store_true", help="List the stale runs, send nothing.")
        parser.add_argument("--database", help="Database alias (default: DATAFLOW['DATABASE']).")
        parser.add_argument("--tenant", help="Only this tenant's runs (django-tenants schema name).")

    def _schemas(self, alias: str, tenant: str | None) -> list[str | None]:
        """None for the public (or only) schema, then every tenant; or just the tenant given."""
        try:
            if tenant is not None:
                tenancy.validate_tenant(tenant)
                return [tenant]
            return [None, *tenancy.tenant_schemas(alias)] if tenancy.tenants_enabled() else [None]
        except tenancy.TenantError as exc:
            raise CommandError(str(exc), returncode=2) from exc

    def handle(self, *args: Any, **options: Any) -> None:
        """List or send, one line per run, then a summary; exit 1 when a send failed."""
        from django_dataflow.runtime.resend import Resent, resend_stale_runs

        alias = options["database"] or conf.database()
        queue = options["queue"] or conf.celery_queue()
        outcomes: list[Resent] = []
        for schema in self._schemas(alias, options["tenant"]):
            limit = options["limit"] if options["limit"] is None else options["limit"] - len(outcomes)
            if limit == 0:
                break
            outcomes += resend_stale_runs(
                alias, options["older_than"], queue=queue, limit=limit, dry_run=options["dry_run"],
                tenant=schema,
            )
        verb = "would send" if options["dry_run"] else "sent"
        for outcome in outcomes:
            error = outcome.error
            where = f"  tenant {outcome.tenant}" if outcome.tenant else ""
            if error is None:
                submitted = f"{outcome.created_at:%Y-%m-%d %H:%M:%S}"
                self.stdout.write(f"{verb:<10} {outcome.run_id}  submitted {submitted}{where}")
            else:
                self.stderr.write(f"{'failed':<10} {outcome.run_id}{where}  {type(error).__name__}: {error}")
        failed = sum(1 for o in outcomes if o.error is not None)
        self.stdout.write(
            f"{len(outcomes) - failed} run(s) {verb} to queue {queue!r}"
            + (f", {failed} failed" if failed else "")
            + ("" if outcomes else " (no pending run is older than the bound)")
        )
        if failed:
            raise CommandError(f"{failed} run(s) could not be sent", returncode=1)
