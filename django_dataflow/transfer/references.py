"""Signed file references: how `dataflow_import --async` hands a file to a Celery worker.

The run's inputs carry {"$dataflow_file": "<token>"} instead of rows; the token is the import's
options (absolute path, format, mapping, reject file), signed with the project's SECRET_KEY by
django.core.signing. The executor turns a valid token back into the streaming row generator on the
worker, which reads the file itself: nothing but the token travels through the broker. A token
needs the SECRET_KEY, so only code running with the project's settings (the management command)
can make one: workflows and inputs arriving from outside (an HTTP API) cannot make a worker read a
file of their choosing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import signing

from django_dataflow.exceptions import WorkflowValidationError

MARKER = "$dataflow_file"
_SALT = "django_dataflow.transfer.file-reference"


def make_reference(spec: Mapping[str, Any]) -> dict[str, str]:
    """The input value standing for the rows of a file (spec: ImportSpec.to_dict())."""
    return {MARKER: signing.dumps(dict(spec), salt=_SALT, compress=True)}


def is_reference(value: Any) -> bool:
    """Whether an input value is a file reference (signed or not)."""
    return isinstance(value, Mapping) and len(value) == 1 and MARKER in value


def open_references(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The inputs with each file reference replaced by the rows of its file (read lazily).

    A reference with a bad signature is refused, naming the input.
    """
    if not any(is_reference(value) for value in inputs.values()):
        return inputs
    from django_dataflow.transfer.importer import ImportSpec, file_rows

    opened = dict(inputs)
    for name, value in inputs.items():
        if not is_reference(value):
            continue
        try:
            spec = signing.loads(str(value[MARKER]), salt=_SALT)
        except signing.BadSignature:
            raise WorkflowValidationError(
                f"input '{name}' is a file reference with an invalid signature; only "
                "manage.py dataflow_import makes them, with this project's SECRET_KEY"
            ) from None
        opened[name] = file_rows(ImportSpec.from_dict(spec))
    return opened
