"""Django app configuration: registers models once every model is loaded."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DataflowConfig(AppConfig):
    """Registers models listed in settings, without touching the database; node classes are
    generated on first lookup."""

    name = "django_dataflow"
    verbose_name = "Dataflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register configured models and connect migrate's signals; invalid settings are left to
        the system checks and first use. No query: the registry table is written after migrate."""
        from django.db import connections
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate, pre_migrate

        from django_dataflow import (
            checks,  # noqa: F401  (registers the system checks)
            conf,
            sqlwatch,
        )
        from django_dataflow.registry import registry

        configured = conf.model_settings() if not conf.find_problems(conf.raw_settings()) else []
        registry().populate(configured)
        from django.apps import apps

        if apps.is_installed("django.contrib.admin"):
            from django_dataflow.api import admin  # noqa: F401  (registers the API token admin)
        # sender=self: migrate sends both signals once per app; these run once per migrate.
        # Every connection reports its writes to the result cache (a no-op while CACHE is None).
        connection_created.connect(sqlwatch.install, dispatch_uid="dataflow_sqlwatch")
        for connection in connections.all(initialized_only=True):
            sqlwatch.install(connection)
        registry().listeners.append(sqlwatch.forget_tables)

        from django_dataflow.triggers import receivers, stored

        receivers.connect()  # schedules' PeriodicTasks follow their rows
        stored.connect()  # stored model-change triggers: read lazily, never here
        pre_migrate.connect(_refuse_forbidden_migrations, sender=self, dispatch_uid="dataflow_policy")
        post_migrate.connect(_record_after_migrate, sender=self, dispatch_uid="dataflow_registry")


# migrate's receivers; the work is imported on the first signal, so start-up imports nothing more.


def _refuse_forbidden_migrations(*, using: str, plan: Any = None, **kwargs: Any) -> None:
    from django_dataflow.schema_registry.policy import refuse_if_forbidden

    refuse_if_forbidden(plan or [], using=using)


def _record_after_migrate(*, using: str, verbosity: int = 1, stdout: Any = None, **kwargs: Any) -> None:
    from django_dataflow.schema_registry.store import record_after_migrate

    record_after_migrate(using, verbosity=verbosity, stdout=stdout)
