"""manage.py dataflow_export: stream a registered model's records to csv or jsonl."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandParser

from django_dataflow.exceptions import DataflowError, PermissionDenied
from django_dataflow.tenancy import TenantError
from django_dataflow.transfer.cli import failed, load_user, usage
from django_dataflow.transfer.errors import UsageError
from django_dataflow.transfer.exporter import EXPORT_FORMATS, export
from django_dataflow.transfer.importer import entry_for


def _names(values: list[str] | None) -> list[str] | None:
    """Names given as separate arguments and/or comma-separated."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    """Write records as csv or JSON lines, streaming (one chunk in memory)."""

    help = (
        "Export the records of a model registered with django_dataflow as csv (a header row, then "
        "one row per record) or jsonl (one JSON object per line), streaming, to --output or standard "
        "output. --filter takes a MongoDB-style filter as JSON, translated as a List node's (fields "
        "hidden by exclude_fields never appear). Exit codes: 0 exported, 1 failed, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Model, filter, order, fields, format and output."""
        parser.add_argument("model", help="The model: 'app_label.Model' (or its registered node name).")
        parser.add_argument(
            "--filter", metavar="JSON", help='MongoDB-style filter, e.g. \'{"price": {"$lt": 50}}\'.'
        )
        parser.add_argument(
            "--order", action="append", metavar="FIELDS",
            help="Sort keys, comma-separated or repeated; '-' for descending, written with '=' so that it "
            "is not read as an option: --order=-created_at,name. Default: the primary key.",
        )
        parser.add_argument(
            "--fields", nargs="+", metavar="FIELD",
            help="Fields to write (names or comma lists); default: all visible.",
        )
        parser.add_argument(
            "--format", choices=EXPORT_FORMATS,
            help="csv or jsonl (default: from --output's extension, else csv).",
        )
        parser.add_argument(
            "--output", "-o", metavar="FILE",
            help="Write here (replaced only on success); default: standard output.",
        )
        parser.add_argument(
            "--chunk-size", type=int, default=None,
            help="Rows fetched per round trip (default DATAFLOW['BULK_BATCH_SIZE']).",
        )
        parser.add_argument("--tenant", help="Read this tenant's schema (django-tenants).")
        parser.add_argument(
            "--user", metavar="USERNAME",
            help="Check this user's view permission and row filter (default: none, the command is trusted).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Export, then report the count on standard error."""
        try:
            count, target = self._handle(options)
        except (UsageError, TenantError) as exc:
            raise usage(str(exc)) from None
        except PermissionDenied as exc:
            raise failed(f"permission denied: {exc}") from None
        except DataflowError as exc:
            raise failed(f"export failed: {exc}") from None
        self.stderr.write(f"Exported {count} {options['model']} record(s) to {target}.")

    def _handle(self, options: dict[str, Any]) -> tuple[int, str]:
        entry = entry_for(options["model"])
        spec = None
        if options["filter"] is not None:
            try:
                spec = json.loads(options["filter"])
            except json.JSONDecodeError as exc:
                raise UsageError(f"--filter is not valid JSON: {exc.msg} (column {exc.colno})") from None
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise UsageError("--chunk-size must be at least 1")
        output = options["output"]
        fmt = options["format"] or _format_of(output)
        user = load_user(options["user"])
        kwargs = {
            "fmt": fmt, "filter": spec, "order": _names(options["order"]),
            "fields": _names(options["fields"]),
            "user": user, "tenant": options["tenant"], "chunk_size": options["chunk_size"],
        }
        if not output or output == "-":
            return export(entry, self._stdout_stream(), **kwargs), "standard output"
        return _export_to_file(entry, output, kwargs), output

    def _stdout_stream(self) -> IO[str]:
        # The raw stream: OutputWrapper.write would add a newline to every chunk.
        stream = getattr(self.stdout, "_out", None)
        return stream if stream is not None else sys.stdout


def _format_of(output: str | None) -> str:
    if output and output.lower().endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if output and not output.lower().endswith(".csv") and output != "-":
        raise UsageError(f"cannot tell the format of {output!r} from its extension; use --format")
    return "csv"


def _export_to_file(entry: Any, output: str, kwargs: dict[str, Any]) -> int:
    """Write to a temporary file beside output and rename it: a failed export leaves no half file."""
    directory = os.path.dirname(os.path.abspath(output))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".dataflow_export.", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {output!r}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            count = export(entry, out, **kwargs)
        os.replace(temporary, output)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return count
