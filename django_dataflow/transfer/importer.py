"""One import: a file's rows streamed through a generator into the model's bulk node.

In this process (LocalRuntime, with progress) or on a Celery worker (CeleryRuntime, the worker
reading the file through a signed reference, see references.py). Either way the rows pass through
one transaction: a bad row (default) or any database refusal leaves nothing written.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import reset_queries

from django_dataflow.exceptions import (
    DataflowError,
    NodeExecutionError,
    WorkflowValidationError,
    valid_names,
)
from django_dataflow.registry import ModelEntry, get_entry, registry
from django_dataflow.runtime.context import ProgressCallback
from django_dataflow.transfer.convert import InvalidRow, RowConverter
from django_dataflow.transfer.errors import BadRow, UsageError
from django_dataflow.transfer.formats import Reader, open_binary, unit_of
from django_dataflow.transfer.lines import LineMap
from django_dataflow.transfer.rejects import RejectFile
from django_dataflow.workflow.builder import WorkflowBuilder
from django_dataflow.workflow.graph import Workflow

#: The node id of the one node an import runs (it appears in errors and run records).
NODE_ID = "import"
ROWS_INPUT = "rows"
_FORGET_QUERIES_EVERY = 10_000


@dataclass
class ImportSpec:
    """What to import and how; JSON-safe, so that it can travel to a worker signed."""

    model: str
    path: str
    fmt: str
    mapping: dict[str, str] = field(default_factory=dict)
    upsert_on: list[str] = field(default_factory=list)
    batch_size: int | None = None
    reject_file: str | None = None  # None: the first bad row aborts the import
    encoding: str = "utf-8-sig"

    def to_dict(self) -> dict[str, Any]:
        """The spec as a dict (for a signed reference)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportSpec:
        """The spec back from to_dict()."""
        return cls(**data)


@dataclass
class ImportResult:
    """Counts of one import."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int | None = 0  # None: not known here (the worker wrote the reject file)
    ignored_columns: list[str] = field(default_factory=list)
    run_id: str = ""


class ImportFailed(DataflowError):
    """The import failed and wrote nothing; the message names the line and field where known."""


def entry_for(label: str) -> ModelEntry:
    """The registry entry of 'app_label.Model' (or a registered node name), else UsageError."""
    entry = get_entry(label) if "." in label else None
    if entry is None:
        entry = next((e for e in registry().entries() if e.name == label), None)
    if entry is None:
        names = valid_names(e.label for e in registry().entries())
        raise UsageError(f"{label!r} is not a model registered with django_dataflow; registered: {names}")
    return entry


def workflow_for(entry: ModelEntry, spec: ImportSpec) -> Workflow:
    """The one-node workflow: BulkCreate, or BulkUpsert on the --upsert-on fields."""
    params: dict[str, Any] = {"data": "{{" + ROWS_INPUT + "}}"}
    if spec.batch_size is not None:
        params["batch_size"] = spec.batch_size
    operation = "BulkCreate"
    if spec.upsert_on:
        operation = "BulkUpsert"
        params["conflict_on"] = list(spec.upsert_on)
    builder = WorkflowBuilder()
    builder.add_node(entry.nodes[operation].type_name, NODE_ID, params)
    try:
        return builder.build()
    except WorkflowValidationError as exc:
        raise UsageError("; ".join(exc.errors)) from None


def converter_for(entry: ModelEntry, spec: ImportSpec) -> RowConverter:
    """The row converter of an import (checks --map up front)."""
    return RowConverter(entry.nodes["BulkCreate"], spec.mapping, text_cells=spec.fmt == "csv")


def stream(
    reader: Reader, converter: RowConverter, rejects: RejectFile | None, lines: LineMap | None = None
) -> Generator[dict[str, Any], None, None]:
    """Converted rows of the reader; a bad row raises BadRow, or goes to the reject file."""
    index = 0
    unit = reader.unit
    for row in reader:
        problem, column = row.problem, None
        values: dict[str, Any] = {}
        if problem is None:
            try:
                values = converter.convert(row.values or {})
            except InvalidRow as exc:
                problem, column = str(exc), exc.field
        if problem is not None:
            if rejects is None:
                raise BadRow(f"{unit} {row.line}: {problem}", line=row.line, field=column)
            rejects.header = reader.header
            rejects.write(row.line, row.raw, problem)
            continue
        if lines is not None:
            lines.add(index, row.line)
        index += 1
        if index % _FORGET_QUERIES_EVERY == 0 and settings.DEBUG:
            # DEBUG keeps the last 9,000 queries, each holding a whole chunk's SQL on the ORM path:
            # hundreds of megabytes over a long import. Django's advice for long jobs under DEBUG.
            reset_queries()
        yield values


def file_rows(spec: ImportSpec) -> Iterator[dict[str, Any]]:
    """The converted rows of spec's file, opened when first iterated (a worker's side of --async)."""
    entry = entry_for(spec.model)
    converter = converter_for(entry, spec)
    rejects = RejectFile(spec.reject_file, spec.fmt, unit_of(spec.fmt)) if spec.reject_file else None
    with open_binary(spec.path) as binary:
        try:
            yield from stream(Reader(binary, spec.fmt, encoding=spec.encoding), converter, rejects)
        finally:
            if rejects is not None:
                rejects.close()


class Import:
    """One import run in this process (LocalRuntime), with progress and line-numbered errors."""

    def __init__(self, spec: ImportSpec) -> None:
        self.spec = spec
        self.entry = entry_for(spec.model)
        self.workflow = workflow_for(self.entry, spec)
        self.converter = converter_for(self.entry, spec)
        self.rejects = RejectFile(spec.reject_file, spec.fmt, unit_of(spec.fmt)) if spec.reject_file else None
        self.binary = open_binary(spec.path)
        self.reader = Reader(self.binary, spec.fmt, encoding=spec.encoding)
        self.lines = LineMap()

    def size(self) -> int | None:
        """The input's size in bytes (None for a pipe)."""
        try:
            size = os.fstat(self.binary.fileno()).st_size
        except (OSError, ValueError, AttributeError):
            return None
        return size or None

    def run(
        self, *, user: Any = None, tenant: str | None = None, progress: ProgressCallback | None = None
    ) -> ImportResult:
        """Execute the import; ImportFailed (nothing written) names the line and field."""
        from django_dataflow.runtime.local import LocalRuntime

        if self.rejects is not None:
            self.rejects.check_writable()
        rows = stream(self.reader, self.converter, self.rejects, self.lines)
        try:
            results, run_id = LocalRuntime(progress=progress).execute(
                self.workflow, inputs={ROWS_INPUT: rows}, tenant=tenant, user=user
            )
        except NodeExecutionError as exc:
            cause = exc.__cause__
            if isinstance(cause, (BadRow, UsageError)):
                raise ImportFailed(str(cause)) from cause
            message = exc.message if isinstance(cause, DataflowError) else str(exc)
            raise ImportFailed(self.lines.locate(message, self.reader.unit)) from exc
        finally:
            rows.close()
            if self.rejects is not None:
                self.rejects.close()
            if self.spec.path != "-":
                self.binary.close()
        outcome = results[NODE_ID]
        return ImportResult(
            created=outcome.get("created", 0),
            updated=outcome.get("updated", 0),
            unchanged=outcome.get("unchanged", 0),
            rejected=self.rejects.count if self.rejects is not None else 0,
            ignored_columns=sorted(self.converter.ignored),
            run_id=run_id,
        )


def submit(spec: ImportSpec, *, user: Any = None, tenant: str | None = None, queue: str | None = None) -> Any:
    """Send the import to a Celery worker, which reads the file at spec.path itself; a RunHandle.

    The path (and the reject file's) are made absolute here and must name the same file on the
    worker's machine: the same host or a shared filesystem. Standard input cannot be sent.
    """
    from django_dataflow.runtime.celery import CeleryRuntime
    from django_dataflow.transfer.references import make_reference

    if spec.path == "-":
        raise UsageError("--async cannot read standard input: the worker reads the file itself; give a path")
    entry = entry_for(spec.model)
    workflow = workflow_for(entry, spec)
    converter_for(entry, spec)  # refuses a bad --map before anything is sent
    open_binary(spec.path).close()  # readable here; the worker checks again when it runs
    spec.path = os.path.abspath(spec.path)
    if spec.reject_file:
        spec.reject_file = os.path.abspath(spec.reject_file)
    inputs = {ROWS_INPUT: make_reference(spec.to_dict())}
    return CeleryRuntime(queue).submit(workflow, inputs, tenant=tenant, user=user)
