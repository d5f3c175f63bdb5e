"""'{{name}}' placeholders in params, replaced from the run's inputs in a single pass."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django_dataflow.exceptions import WorkflowValidationError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def is_template(value: Any) -> bool:
    """Whether a value is a string holding at least one placeholder."""
    return isinstance(value, str) and "{{" in value and PLACEHOLDER.search(value) is not None


def names_in(value: Any) -> set[str]:
    """Every input name a (nested) param value refers to."""
    found: set[str] = set()
    _collect(value, found)
    return found


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        if "{{" in value:
            found.update(PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, found)


def render(value: Any, inputs: Mapping[str, Any]) -> Any:
    """Replace placeholders; a value that is exactly one placeholder keeps the input's type.

    Substituted text is never scanned again, so an input holding '{{x}}' stays literal.
    """
    if isinstance(value, str):
        if "{{" not in value:
            return value
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return inputs[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: _as_text(inputs[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {key: render(item, inputs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, inputs) for item in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def check_inputs(required: set[str], inputs: Mapping[str, Any]) -> None:
    """Refuse a run whose inputs lack a name the workflow's placeholders use."""
    if not isinstance(inputs, Mapping):
        raise WorkflowValidationError(f"inputs must be a dict, not {type(inputs).__name__}")
    missing = sorted(required - inputs.keys())
    if missing:
        raise WorkflowValidationError(
            f"missing input(s) {', '.join(missing)}; the workflow uses: {', '.join(sorted(required))}"
        )
