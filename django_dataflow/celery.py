"""Celery wiring for a project: the queue, task routes and the settings django-dataflow expects.

A project's ``celery.py`` stays the one from Celery's Django guide; add the routes (or
``configure(app)``) and start a worker that consumes the ``dataflow`` queue::

    # settings.py
    from django_dataflow.celery import task_routes
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ROUTES = task_routes()
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    CELERY_DB_REUSE_MAX = 1000

    $ celery -A proj worker -Q dataflow,celery

This module never imports Celery at import time, so settings may import it. See docs/celery.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QUEUE", "TASK_NAME", "configure", "is_eager", "recommended_settings", "task_routes"]

#: The default queue of workflow runs (DATAFLOW["CELERY_QUEUE"]).
QUEUE = "dataflow"
#: The registered name of the worker task (django_dataflow/tasks.py).
TASK_NAME = "django_dataflow.run_workflow"


def task_routes(queue: str = QUEUE) -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES entries sending django-dataflow's tasks to their own queue."""
    return {"django_dataflow.*": {"queue": queue}}


def recommended_settings(redis_url: str, *, visibility_timeout: int = 3600) -> dict[str, Any]:
    """The CELERY_* settings django-dataflow is tested with, for ``globals().update(...)``.

    visibility_timeout should exceed your longest run: that is how long a run whose worker died
    waits before Redis hands its message to another worker.
    """
    return {
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_TASK_ROUTES": task_routes(),
        # One message reserved per process: with acks_late a crash hands back only what was running.
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        # Celery's Django fixup closes the database connection around every task without this.
        "CELERY_DB_REUSE_MAX": 1000,
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": visibility_timeout},
        "CELERY_RESULT_EXPIRES": 86400,
    }


def is_eager(app: Any = None) -> bool:
    """Whether CeleryRuntime would run in this process (no broker configured, or forced)."""
    from django_dataflow.runtime.broker import is_eager as decide

    return decide(app)


def configure(app: Any = None, queue: str = QUEUE) -> Any:
    """Add django-dataflow's route to an existing app's task_routes (keeping the app's own)."""
    from django_dataflow.runtime.broker import resolve_app

    app = resolve_app(app)
    routes = app.conf.task_routes
    if routes is None or isinstance(routes, dict):
        app.conf.task_routes = {**(routes or {}), **task_routes(queue)}
    else:  # a list or tuple of routers: ours goes first
        app.conf.task_routes = [task_routes(queue), *routes]
    return app
