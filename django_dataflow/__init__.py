"""django-dataflow: registered Django models become workflow nodes run in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_dataflow.registry import register

if TYPE_CHECKING:
    from django_dataflow.exceptions import (
        DataflowError,
        NodeExecutionError,
        PermissionDenied,
        RecordNotFound,
        WorkflowValidationError,
    )
    from django_dataflow.monitoring import health
    from django_dataflow.query.builder import QueryBuilder
    from django_dataflow.runtime.celery import CeleryRuntime
    from django_dataflow.runtime.definitions import run
    from django_dataflow.runtime.local import LocalRuntime
    from django_dataflow.triggers.model_events import on_commit_of
    from django_dataflow.workflow.builder import WorkflowBuilder
    from django_dataflow.workflow.graph import Workflow

__version__ = "0.1.0"

__all__ = [
    "CeleryRuntime",
    "DataflowError",
    "LocalRuntime",
    "NodeExecutionError",
    "PermissionDenied",
    "QueryBuilder",
    "RecordNotFound",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowValidationError",
    "health",
    "on_commit_of",
    "register",
    "run",
]

# Loaded on first access so that importing the app (during INSTALLED_APPS set-up) stays cheap
# and never imports models before the app registry is ready.
_LAZY = {
    "DataflowError": "django_dataflow.exceptions",
    "NodeExecutionError": "django_dataflow.exceptions",
    "PermissionDenied": "django_dataflow.exceptions",
    "RecordNotFound": "django_dataflow.exceptions",
    "WorkflowValidationError": "django_dataflow.exceptions",
    "QueryBuilder": "django_dataflow.query.builder",
    "LocalRuntime": "django_dataflow.runtime.local",
    "CeleryRuntime": "django_dataflow.runtime.celery",
    "run": "django_dataflow.runtime.definitions",
    "on_commit_of": "django_dataflow.triggers.model_events",
    "WorkflowBuilder": "django_dataflow.workflow.builder",
    "health": "django_dataflow.monitoring",
    "Workflow": "django_dataflow.workflow.graph",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_dataflow' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
