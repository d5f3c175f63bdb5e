"""Running the commands in process: (exit code, stdout, stderr or error message)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError


class TerminalOutput(StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def call(*args: Any, stdout: StringIO | None = None) -> tuple[int, str, str]:
    """call_command, returning (exit code, stdout, stderr); a CommandError's message is stderr."""
    out, err = stdout if stdout is not None else StringIO(), StringIO()
    try:
        call_command(*[str(a) for a in args], stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """dataflow_run with a stderr that says it is a terminal: (exit code, stdout, stderr)."""
    out, err = StringIO(), TerminalOutput()
    try:
        call_command("dataflow_run", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def write(path: Path, text: str) -> Path:
    """Write text to path and return it."""
    path.write_text(text, encoding="utf-8")
    return path
