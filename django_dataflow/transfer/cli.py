"""What both commands share: exit codes, the --user lookup and the TTY check."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from django_dataflow.transfer.errors import UsageError

#: Exit codes: 0 success, 1 the work failed (nothing written by an import), 2 usage error.
FAILED = 1
USAGE = 2


def usage(message: str) -> CommandError:
    """A usage error (exit code 2)."""
    return CommandError(message, returncode=USAGE)


def failed(message: str) -> CommandError:
    """A failure of the work (exit code 1)."""
    return CommandError(message, returncode=FAILED)


def load_user(username: str | None) -> Any:
    """The user named by --user (None: trusted, as for code calling the runtimes), else exit 2."""
    if username is None:
        return None
    from django.contrib.auth import get_user_model

    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        raise UsageError(f"--user {username!r}: no such user") from None


def is_terminal(stream: Any) -> bool:
    """Whether the command's output is a terminal (progress bars only there)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
