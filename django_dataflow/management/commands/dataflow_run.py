"""manage.py dataflow_run: run a stored definition or a workflow JSON file, for one tenant or all."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_dataflow import conf, tenancy
from django_dataflow.exceptions import DataflowError, WorkflowValidationError
from django_dataflow.management.progress import Progress
from django_dataflow.workflow.graph import Workflow

#: Exit codes: the run succeeded (or was submitted), a run failed, the command could not start one.
OK, RUN_FAILED, USAGE = 0, 1, 2

EXIT_CODES = (
    "Exit codes: 0 the run succeeded (or, with --async and no --wait, was submitted); "
    "1 a run failed (with --all-tenants: any tenant's run); 2 no run was started (bad arguments, "
    "unreadable or invalid workflow or inputs, unknown definition or tenant)."
)


def parse_input(text: str) -> tuple[str, Any]:
    """One --input k=v: the value as JSON when it is JSON (2, true, null, [..], {..}), else the text."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--input {text!r}: expected NAME=VALUE", returncode=USAGE)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def read_json(path: str, what: str) -> Any:
    """A JSON document from a file ('-' is standard input); a usage error naming the file if not."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CommandError(f"{what} {path!r}: {exc}", returncode=USAGE) from exc


class Command(BaseCommand):
    """Run a workflow in this process (atomically) or through Celery, and print its results."""

    help = (
        "Run a stored workflow definition (by name) or a workflow JSON file (the to_dict() form), "
        "atomically, in this process or (--async) on a Celery worker; --tenant runs it in one "
        "tenant's schema, --all-tenants once per tenant (each run atomic on its own). " + EXIT_CODES
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The workflow, its inputs, where it runs and how the outcome is printed."""
        parser.add_argument(
            "workflow", metavar="NAME_OR_FILE.json",
            help="A WorkflowDefinition name, or a path to a workflow JSON file ('-': standard input).",
        )
        parser.add_argument(
            "--input", action="append", default=[], metavar="NAME=VALUE",
            help="An input value (repeatable); VALUE is read as JSON when it is JSON, else as text.",
        )
        parser.add_argument(
            "--inputs-json", metavar="FILE",
            help="A JSON object of inputs ('-': standard input); --input values override its keys.",
        )
        parser.add_argument(
            "--async", dest="run_async", action="store_true",
            help="Submit through CeleryRuntime and print the run id instead of running here.",
        )
        parser.add_argument(
            "--wait", action="store_true",
            help="With --async: wait for the run to finish and print its results (implies --async); "
            "on a terminal (stderr, without --json) show its status, finished nodes and progress.",
        )
        parser.add_argument(
            "--timeout", type=float, default=None, metavar="SECONDS",
            help="With --wait: give up waiting after this many seconds (exit code 1; the run goes on).",
        )
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--tenant", metavar="SCHEMA", help="Run in this tenant's schema (django-tenants).")
        where.add_argument(
            "--all-tenants", action="store_true",
            help="Run once per tenant, each run atomic on its own, and report every tenant's outcome.",
        )
        parser.add_argument("--json", action="store_true", help="Print the outcome as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Load the workflow and inputs, run it for each tenant asked, print, set the exit code."""
        run_async = options["run_async"] or options["wait"]
        if options["timeout"] is not None and not options["wait"]:
            raise CommandError("--timeout only applies with --wait", returncode=USAGE)
        workflow = self._load(options["workflow"])
        inputs = self._inputs(options)
        tenants = self._tenants(options)
        outcomes = [self._run(workflow, inputs, tenant, run_async, options) for tenant in tenants]
        self._print(outcomes, options, many=options["all_tenants"])
        if any(o["status"] not in ("succeeded", "submitted") for o in outcomes):
            failed = sum(o["status"] == "failed" for o in outcomes)
            message = "the run failed" if len(outcomes) == 1 else f"{failed} of {len(outcomes)} runs failed"
            raise CommandError(message, returncode=RUN_FAILED)

    # -- loading

    def _load(self, name_or_file: str) -> Any:
        """A WorkflowDefinition (by name) or a Workflow (from a file)."""
        try:
            if name_or_file == "-" or name_or_file.endswith(".json") or Path(name_or_file).is_file():
                return Workflow.from_dict(read_json(name_or_file, "workflow file"))
            from django_dataflow.runtime.definitions import get_definition

            definition = get_definition(name_or_file)
            definition.build()  # an invalid stored workflow is refused before any run
            return definition
        except WorkflowValidationError as exc:
            raise CommandError(str(exc), returncode=USAGE) from exc

    def _inputs(self, options: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        if options["inputs_json"]:
            loaded = read_json(options["inputs_json"], "--inputs-json")
            if not isinstance(loaded, dict):
                raise CommandError(
                    f"--inputs-json {options['inputs_json']!r} must hold a JSON object, not "
                    f"{type(loaded).__name__}", returncode=USAGE,
                )
            inputs.update(loaded)
        inputs.update(parse_input(text) for text in options["input"])
        return inputs

    def _tenants(self, options: dict[str, Any]) -> list[str | None]:
        """The tenants to run for: the one given, every tenant, or none."""
        try:
            if options["all_tenants"]:
                if not tenancy.tenants_enabled():
                    raise tenancy.TenantError("--all-tenants needs django-tenants in INSTALLED_APPS")
                names = tenancy.tenant_schemas(conf.database())
                if not names:
                    raise tenancy.TenantError("--all-tenants: there are no tenants")
                return [*names]  # a list[str] is not a list[str | None]
            tenancy.validate_tenant(options["tenant"])
            return [options["tenant"]]
        except tenancy.TenantError as exc:
            raise CommandError(str(exc), returncode=USAGE) from exc

    # -- running

    def _run(
        self, workflow: Any, inputs: dict[str, Any], tenant: str | None, run_async: bool,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """One run; its outcome as a dict (status succeeded, submitted or failed)."""
        from django_dataflow import CeleryRuntime, LocalRuntime

        outcome: dict[str, Any] = {"tenant": tenant, "run_id": None}
        progress = Progress(self.stderr, self.stderr.isatty() and not options["json"])
        try:
            if run_async:
                handle = CeleryRuntime().submit(workflow, inputs, tenant=tenant)
                outcome["run_id"] = handle.run_id
                if not options["wait"]:
                    return {**outcome, "status": "submitted"}
                results = handle.wait(options["timeout"], on_update=progress.on_update)
            else:
                built = workflow.build() if hasattr(workflow, "build") else workflow
                runtime = LocalRuntime(progress=progress)
                results, outcome["run_id"] = runtime.execute(built, inputs, tenant=tenant)
        except (WorkflowValidationError, tenancy.TenantError) as exc:
            # Nothing ran: refused inputs, a public run of tenant models, ...
            if options["all_tenants"]:
                return {**outcome, "status": "failed", "error": str(exc), "error_type": type(exc).__name__}
            raise CommandError(str(exc), returncode=USAGE) from exc
        except DataflowError as exc:
            run_id = getattr(exc, "run_id", None) or outcome["run_id"]
            return {
                **outcome, "run_id": run_id, "status": "failed", "error": str(exc),
                "error_type": type(exc).__name__, "node_id": getattr(exc, "node_id", None),
            }
        finally:
            progress.done()
        return {**outcome, "status": "succeeded", "results": results}

    # -- printing

    def _print(self, outcomes: list[dict[str, Any]], options: dict[str, Any], *, many: bool) -> None:
        if options["json"]:
            document: Any = {"tenants": outcomes} if many else outcomes[0]
            self.stdout.write(json.dumps(document, indent=2, default=str))
            return
        for outcome in outcomes:
            where = f" (tenant {outcome['tenant']})" if outcome["tenant"] else ""
            run = f"run {outcome['run_id']}" if outcome["run_id"] else "run"
            if outcome["status"] == "succeeded":
                self.stdout.write(self.style.SUCCESS(f"{run}{where} succeeded"))
                if not many:
                    self.stdout.write(json.dumps(outcome["results"], indent=2, default=str))
            elif outcome["status"] == "submitted":
                self.stdout.write(f"{run}{where} submitted")
            else:
                self.stderr.write(f"{run}{where} failed: {outcome['error']}")
