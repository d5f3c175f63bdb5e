"""The two ways a transfer fails: a usage error (exit 2) and a bad row (exit 1)."""

from __future__ import annotations

from django_dataflow.exceptions import DataflowError


class UsageError(DataflowError):
    """The command line is wrong (unknown model, field, format, filter...): exit code 2."""


class BadRow(DataflowError):
    """A row of the input that cannot be imported; the message names its line and field."""

    def __init__(self, message: str, *, line: int, field: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.field = field
