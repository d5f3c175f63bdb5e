"""Finding the Celery app and deciding between a real broker and eager mode.

Celery itself is imported lazily: without a broker (or without Celery installed) CeleryRuntime runs
the worker's code in this process, "eager mode".
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_dataflow import conf

#: Runtime names written to WorkflowRun.runtime.
RUNTIME = "celery"
RUNTIME_EAGER = "celery-eager"


def celery_installed() -> bool:
    """Whether the celery package can be imported."""
    return find_spec("celery") is not None


def resolve_app(app: Any = None) -> Any:
    """The Celery app: the one given, DATAFLOW['CELERY_APP'], or Celery's current app."""
    if app is not None:
        return app
    if not celery_installed():
        raise ImproperlyConfigured(
            "CeleryRuntime needs Celery for a real broker: pip install 'django-dataflow[celery]'"
        )
    path = conf.celery_app_path()
    if path:
        from django.utils.module_loading import import_string

        return import_string(path)
    from celery import current_app

    return current_app._get_current_object()


def is_eager(app: Any = None) -> bool:
    """Whether CeleryRuntime runs in this process: forced by DATAFLOW['CELERY_EAGER'], else when no
    broker is configured (or the app has task_always_eager)."""
    forced = conf.celery_eager()
    if forced is not None:
        return forced
    if app is None and not celery_installed():
        if getattr(settings, "CELERY_BROKER_URL", None):
            raise ImproperlyConfigured(
                "CELERY_BROKER_URL is set but Celery is not installed: pip install 'django-dataflow[celery]'"
            )
        return True
    app = resolve_app(app)
    return not app.conf.broker_url or bool(app.conf.task_always_eager)


def backend_disabled(app: Any) -> bool:
    """Whether the app has no result backend (progress and results then come from the row)."""
    from celery.backends.base import DisabledBackend

    return isinstance(app.backend, DisabledBackend)
