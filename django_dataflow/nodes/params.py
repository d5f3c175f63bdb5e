"""Checks of scalar params (flags, limits) shared by the operation mixins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.workflow.templating import is_template


def flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    """A boolean param; anything but true/false is an error naming it."""
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise WorkflowValidationError(f"'{name}' must be true or false, not {value!r}")
    return value


def integer(
    params: Mapping[str, Any], name: str, default: int, *, minimum: int, maximum: int | None = None,
    limit_name: str = "",
) -> int:
    """A bounded integer param; bools, floats and strings of text are errors naming it."""
    value = params.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkflowValidationError(f"'{name}' must be an integer, not {value!r}")
    if value < minimum:
        raise WorkflowValidationError(f"'{name}' must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise WorkflowValidationError(
            f"'{name}' is {value}, more than {limit_name or maximum} ({maximum})"
        )
    return value


def static_problems(params: Mapping[str, Any], checks: dict[str, Any]) -> list[str]:
    """Run scalar checks on params known at build time (placeholders are checked at run time)."""
    problems = []
    for name, check in checks.items():
        if name in params and not is_template(params[name]):
            try:
                check(params)
            except WorkflowValidationError as exc:
                problems += exc.errors
    return problems


def validation_message(exc: ValidationError) -> str:
    """A Django ValidationError from full_clean as "field 'x': message" text."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    parts = []
    for name, errors in exc.error_dict.items():
        text = " ".join(m for error in errors for m in error.messages)
        parts.append(text if name == "__all__" else f"field '{name}': {text}")
    return "; ".join(parts)
