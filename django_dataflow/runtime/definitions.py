"""Running a stored WorkflowDefinition by name: django_dataflow.run("nightly_import", ...)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError, valid_names

#: WorkflowDefinition.name is a SlugField(max_length=100).
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")

if TYPE_CHECKING:
    from django_dataflow.models import WorkflowDefinition
    from django_dataflow.runtime.handle import RunHandle


def get_definition(name: str, *, using: str | None = None) -> WorkflowDefinition:
    """The definition with this name; WorkflowValidationError listing the defined names if none."""
    from django_dataflow.models import WorkflowDefinition

    if not isinstance(name, str) or not _SLUG.fullmatch(name):
        # Never sent to the database: a NUL byte alone would make PostgreSQL raise DataError.
        raise WorkflowValidationError(
            f"no workflow definition named {str(name)[:100]!r}: names are slugs of at most 100 characters"
        )
    manager = WorkflowDefinition.objects.using(using or conf.database())
    definition = manager.filter(name=name).first()
    if definition is None:
        names = manager.values_list("name", flat=True)
        raise WorkflowValidationError(
            f"no workflow definition named {name!r}; defined: {valid_names(names)}"
        )
    return definition


def run(
    name: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    async_: bool = False,
    tenant: str | None = None,
    user: Any = None,
    queue: str | None = None,
    using: str | None = None,
) -> tuple[dict[str, Any], str] | RunHandle:
    """Run a named definition: (results, run_id) in this process, or a RunHandle with async_=True."""
    definition = get_definition(name, using=using)
    if async_:
        from django_dataflow.runtime.celery import CeleryRuntime

        return CeleryRuntime(queue, using=using).submit(definition, inputs, tenant=tenant, user=user)
    if queue is not None:
        raise WorkflowValidationError("queue= only applies to async_=True runs")
    from django_dataflow.runtime.local import LocalRuntime

    return LocalRuntime(using=using).execute(definition.build(), inputs, tenant=tenant, user=user)
