"""The reject file of --skip-bad-rows: each refused row with its line and the reason.

CSV input gives a CSV reject file: the input's header plus `_line` and `_error` columns, each row's
cells as read (a row with the wrong number of cells keeps them as they were). JSON and JSON lines
input gives JSON lines: {"line": n, "error": "...", "row": <the row as read>}.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any

from django_dataflow.transfer.errors import UsageError


class RejectFile:
    """Appends refused rows to a file opened when the first one arrives (absent: none refused)."""

    def __init__(self, path: str, fmt: str, unit: str) -> None:
        self.path = path
        self.fmt = fmt
        self.unit = unit
        self.count = 0
        self._file: IO[str] | None = None
        self._csv: Any = None
        self.header: list[str] | None = None

    def check_writable(self) -> None:
        """Fail before the import when the reject file cannot be created."""
        try:
            with open(self.path, "w", encoding="utf-8"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write the reject file {self.path!r}: {exc.strerror}") from None

    def write(self, line: int, raw: Any, problem: str) -> None:
        """Record one refused row."""
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8", newline="")
            if self.fmt == "csv":
                self._csv = csv.writer(self._file, lineterminator="\n")
                self._csv.writerow([*(self.header or []), "_line", "_error"])
        self.count += 1
        if self._csv is not None:
            cells = list(raw.values()) if isinstance(raw, dict) else list(raw)
            self._csv.writerow([*cells, line, problem])
        else:
            record = {self.unit: line, "error": problem, "row": raw}
            self._file.write(json.dumps(record, default=str) + "\n")

    def close(self) -> None:
        """Flush and close (nothing to do when no row was refused)."""
        if self._file is not None:
            self._file.close()
            self._file = None
