"""manage.py dataflow_import: stream a csv, jsonl or json file into a registered model."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_dataflow.exceptions import DataflowError, PermissionDenied, RunTimeout
from django_dataflow.management.arguments import positive, seconds
from django_dataflow.management.progress import Progress
from django_dataflow.tenancy import TenantError
from django_dataflow.transfer import importer
from django_dataflow.transfer.cli import failed, is_terminal, load_user, usage
from django_dataflow.transfer.convert import parse_mapping
from django_dataflow.transfer.errors import UsageError
from django_dataflow.transfer.formats import FORMATS, format_of
from django_dataflow.transfer.progress import ProgressBar


class Command(BaseCommand):
    """Import a file in one transaction: every row, or (on any error) none."""

    help = (
        "Import FILE (.csv with a header row, .jsonl with one object per line, or .json holding one "
        "array of objects; '-' reads standard input with --format) into a model registered with "
        "django_dataflow, in one transaction, through its BulkCreate node (BulkUpsert with "
        "--upsert-on). Values are converted by the model's fields. The first bad row aborts the "
        "import and nothing is written, unless --skip-bad-rows sends bad rows to --reject-file. "
        "Exit codes: 0 imported, 1 the import failed (nothing written) or --wait gave up after "
        "--timeout (the import goes on), 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Model, file and the import's options."""
        parser.add_argument("model", help="The model: 'app_label.Model' (or its registered node name).")
        parser.add_argument("file", help="The file to read, or '-' for standard input (needs --format).")
        parser.add_argument(
            "--format", choices=FORMATS, help="csv, jsonl or json (default: from the extension)."
        )
        parser.add_argument(
            "--upsert-on", nargs="+", metavar="FIELD",
            help="Update rows whose FIELD(s) (backed by a unique constraint) exist; insert the others.",
        )
        parser.add_argument(
            "--batch-size", type=positive, metavar="N",
            help="Rows per chunk (default DATAFLOW['BULK_BATCH_SIZE']); progress is reported per chunk.",
        )
        parser.add_argument(
            "--map", action="append", metavar="COLUMN=FIELD",
            help="Read COLUMN into FIELD (repeatable); 'COLUMN=' ignores the column.",
        )
        parser.add_argument(
            "--skip-bad-rows", action="store_true",
            help="Write rows the fields refuse to --reject-file (with their line and error) and "
            "import the rest.",
        )
        parser.add_argument(
            "--reject-file", metavar="PATH", help="Where --skip-bad-rows writes refused rows."
        )
        parser.add_argument(
            "--async", dest="run_async", action="store_true",
            help="Submit the import to a Celery worker (CeleryRuntime), which reads FILE itself: the "
            "path must name the same file on the worker. Prints the run id.",
        )
        parser.add_argument(
            "--wait", action="store_true",
            help="With --async: wait for the run and report it; on a terminal (standard output) show "
            "its status, finished node and rows as the worker reports them.",
        )
        parser.add_argument(
            "--timeout", type=seconds, metavar="SECONDS",
            help="With --async --wait: give up waiting after this many seconds (exit code 1; the "
            "import goes on).",
        )
        parser.add_argument("--tenant", help="Run in this tenant's schema (django-tenants).")
        parser.add_argument(
            "--user", metavar="USERNAME",
            help="Check this user's model permissions (default: none, the command is trusted).",
        )
        parser.add_argument(
            "--encoding", default="utf-8-sig", help="Text encoding of a CSV file (default utf-8)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the import and report its counts."""
        try:
            self._handle(options)
        except (UsageError, TenantError) as exc:
            raise usage(str(exc)) from None
        except PermissionDenied as exc:
            raise failed(f"permission denied: {exc}") from None
        except RunTimeout as exc:
            # Not "nothing was written": the worker goes on and may still commit the import.
            raise failed(
                f"gave up waiting: {exc}; the import goes on (its WorkflowRun row will say how it ends)"
            ) from None
        except DataflowError as exc:
            raise failed(f"import failed, nothing was written: {exc}") from None

    def _handle(self, options: dict[str, Any]) -> None:
        path = options["file"]
        if options["skip_bad_rows"] != bool(options["reject_file"]):
            raise UsageError("--skip-bad-rows and --reject-file go together")
        if options["wait"] and not options["run_async"]:
            raise UsageError("--wait goes with --async")
        if options["timeout"] is not None and not options["wait"]:
            raise UsageError("--timeout goes with --async --wait")
        spec = importer.ImportSpec(
            model=options["model"],
            path=path,
            fmt=format_of(path, options["format"]),
            mapping=parse_mapping(options["map"]),
            upsert_on=list(options["upsert_on"] or []),
            batch_size=options["batch_size"],
            reject_file=options["reject_file"],
            encoding=options["encoding"],
        )
        user = load_user(options["user"])
        if options["run_async"]:
            self._submit(spec, user, options)
            return
        job = importer.Import(spec)
        bar = None
        if is_terminal(self.stdout):
            bar = ProgressBar(
                lambda text: self.stdout.write(text, ending=""), total_bytes=job.size(),
                position=job.reader.position,
            )
        try:
            result = job.run(user=user, tenant=options["tenant"], progress=bar)
        except DataflowError:
            if bar is not None and bar.drawn:
                self.stdout.write("")  # end the bar's line before the error
            raise
        if bar is not None:
            bar.finish(result.created + result.updated + result.unchanged)
        self._report(spec, result)

    def _report(self, spec: importer.ImportSpec, result: importer.ImportResult) -> None:
        counts = f"{result.created} created"
        if spec.upsert_on:
            counts += f", {result.updated} updated"
            if result.unchanged:
                counts += f", {result.unchanged} unchanged"
        self.stdout.write(self.style.SUCCESS(f"Imported {spec.path} into {spec.model}: {counts}."))
        if result.ignored_columns:
            self.stdout.write(f"Read-only columns ignored: {', '.join(result.ignored_columns)}.")
        if spec.reject_file and result.rejected is None:
            self.stdout.write(f"Bad rows, if any, were written by the worker to {spec.reject_file}.")
        elif spec.reject_file:
            self.stdout.write(f"{result.rejected} bad row(s) written to {spec.reject_file}.")

    def _submit(self, spec: importer.ImportSpec, user: Any, options: dict[str, Any]) -> None:
        handle = importer.submit(spec, user=user, tenant=options["tenant"])
        self.stdout.write(f"Submitted the import of {spec.path} into {spec.model}: run {handle.run_id}.")
        if not options["wait"]:
            return
        # The import's terminal is standard output, where its in-process bar is drawn too.
        progress = Progress(self.stdout, is_terminal(self.stdout))
        try:
            results = handle.wait(options["timeout"], on_update=progress.on_update)
        finally:
            progress.done()
        outcome = results[importer.NODE_ID]
        self._report(
            spec,
            importer.ImportResult(
                created=outcome.get("created", 0), updated=outcome.get("updated", 0),
                unchanged=outcome.get("unchanged", 0), rejected=None, run_id=handle.run_id,
            ),
        )
