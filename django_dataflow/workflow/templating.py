"""'{{name}}' placeholders in params, replaced from the run's inputs in a single pass."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django_dataflow import bounds, conf
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

    Substituted text is never scanned again, so an input holding '{{x}}' stays literal. Each param
    may grow by at most DATAFLOW['MAX_PARAMS_BYTES'] through substitution: a param repeating a
    placeholder 100,000 times must not turn 1 MiB of inputs into 100 GB (a param that is exactly
    one placeholder is bounded by the inputs' own size).
    """
    if isinstance(value, Mapping):
        return {key: _Renderer(inputs, key).top(item) for key, item in value.items()}
    return _Renderer(inputs, "value").top(value)


class _Renderer:
    """Renders one param, counting what substitution adds to it."""

    def __init__(self, inputs: Mapping[str, Any], name: Any) -> None:
        self.inputs = inputs
        self.name = name
        self.limit = conf.max_params_bytes()
        self.added = 0

    def top(self, value: Any) -> Any:
        whole = PLACEHOLDER.fullmatch(value) if isinstance(value, str) and "{{" in value else None
        return self.inputs[whole.group(1)] if whole else self.render(value)

    def render(self, value: Any) -> Any:
        if isinstance(value, str):
            if "{{" not in value:
                return value
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                found = self.inputs[whole.group(1)]
                self.grow(bounds.measure(found, where="inputs", limit=self.limit))
                return found
            return PLACEHOLDER.sub(self.text, value)
        if isinstance(value, Mapping):
            return {key: self.render(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.render(item) for item in value]
        return value

    def text(self, match: re.Match[str]) -> str:
        text = _as_text(self.inputs[match.group(1)])
        self.grow(len(text))
        return text

    def grow(self, size: int) -> None:
        self.added += size
        if self.added > self.limit:
            raise WorkflowValidationError(
                f"param '{self.name}' grows by more than DATAFLOW['MAX_PARAMS_BYTES'] ({self.limit} "
                "bytes) when its placeholders are replaced"
            )


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def check_inputs(required: set[str], inputs: Mapping[str, Any], rows: frozenset[str] = frozenset()) -> None:
    """Refuse a run whose inputs lack a name the workflow's placeholders use, or that are too big,
    too deep or hold text no column can store (DATAFLOW['MAX_PARAMS_BYTES']); the inputs named in
    rows feed bulk row params only and are bounded by DATAFLOW['MAX_BULK_ROWS'] instead."""
    if not isinstance(inputs, Mapping):
        raise WorkflowValidationError(f"inputs must be a dict, not {type(inputs).__name__}")
    bounds.check_inputs(inputs, rows)
    missing = sorted(required - inputs.keys())
    if missing:
        raise WorkflowValidationError(
            f"missing input(s) {', '.join(missing)}; the workflow uses: {', '.join(sorted(required))}"
        )
