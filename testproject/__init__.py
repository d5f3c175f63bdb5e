"""The test project package; it loads its Celery app (when Celery is installed), as Celery's
Django guide asks, so that `celery -A testproject worker` finds it and shared tasks bind to it."""

from importlib.util import find_spec

if find_spec("celery") is not None:
    from .celery_app import app as celery_app

    __all__ = ("celery_app",)
