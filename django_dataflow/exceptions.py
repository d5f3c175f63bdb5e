"""Errors raised by django-dataflow; every one derives from DataflowError."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core import exceptions as django_exceptions

__all__ = [
    "DataflowError",
    "MultipleRecordsFound",
    "NodeExecutionError",
    "PermissionDenied",
    "RecordNotFound",
    "RegistryError",
    "RowRejected",
    "RunCancelled",
    "RunTimeout",
    "WorkflowValidationError",
]


#: Problems a WorkflowValidationError's message lists (all of them are in .errors).
MESSAGE_PROBLEMS = 50


class DataflowError(Exception):
    """Base class of every error django-dataflow raises on purpose."""


class WorkflowValidationError(DataflowError, ValueError):
    """A workflow, its params or a filter is invalid; raised before anything touches the database."""

    def __init__(self, errors: str | Sequence[str], *, node_id: str | None = None) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        self.node_id = node_id
        super().__init__("; ".join(self.errors) if len(self.errors) < 2 else self._multi())

    def _multi(self) -> str:
        # The message stays readable however many problems hostile input causes; .errors has all.
        shown = self.errors[:MESSAGE_PROBLEMS]
        lines = "\n".join(f"  - {e}" for e in shown)
        more = len(self.errors) - len(shown)
        tail = f"\n  ... and {more} more (see .errors)" if more else ""
        return f"{len(self.errors)} problems:\n{lines}{tail}"


class NodeExecutionError(DataflowError):
    """A node failed while the workflow ran; the run was rolled back."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        node_type: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.message = message
        self.node_id = node_id
        self.node_type = node_type
        self.run_id = run_id
        super().__init__(message)

    def __str__(self) -> str:
        if self.node_id is None:
            return self.message
        kind = f" ({self.node_type})" if self.node_type else ""
        return f"node '{self.node_id}'{kind} failed: {self.message}"


class RecordNotFound(NodeExecutionError, django_exceptions.ObjectDoesNotExist):
    """A Read/Update/Delete node matched no record."""


class MultipleRecordsFound(NodeExecutionError, django_exceptions.MultipleObjectsReturned):
    """A Read/Update/Delete node's conditions matched more than one record."""


class PermissionDenied(DataflowError, django_exceptions.PermissionDenied):
    """The user given to a runtime lacks a Django permission a node needs."""

    def __init__(self, message: str, *, node_id: str | None = None, permission: str = "") -> None:
        self.node_id = node_id
        self.permission = permission
        super().__init__(message)


class RowRejected(DataflowError):
    """The database refused a row of a bulk node's input: names the row index, chunk and field."""

    def __init__(
        self, message: str, *, row: int | None = None, chunk: int | None = None, field: str | None = None
    ) -> None:
        self.row = row
        self.chunk = chunk
        self.field = field
        where = "" if row is None else f"row {row} (chunk {chunk}): "
        where += "" if field is None else f"field '{field}': "
        super().__init__(where + message)


class RunCancelled(DataflowError):
    """wait() on a run that was cancelled before it started."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)


class RunTimeout(DataflowError, TimeoutError):
    """wait() gave up before the run finished; the run itself goes on."""

    def __init__(self, message: str, *, run_id: str | None = None, status: str = "") -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(message)


class RegistryError(DataflowError, LookupError):
    """The model registry table cannot answer: not migrated, or it lacks a model or table asked for."""


def valid_names(names: Iterable[str], limit: int = 60) -> str:
    """Format the valid choices for an error message, sorted and bounded."""
    ordered = sorted(set(names))
    if len(ordered) > limit:
        shown = ", ".join(ordered[:limit])
        return f"{shown}, ... ({len(ordered) - limit} more)"
    return ", ".join(ordered) if ordered else "(none)"
