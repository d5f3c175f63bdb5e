"""Django app configuration: registers models once every model is loaded."""

from __future__ import annotations

from django.apps import AppConfig


class DataflowConfig(AppConfig):
    """Registers models listed in settings, without touching the database; node classes are
    generated on first lookup."""

    name = "django_dataflow"
    verbose_name = "Dataflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register configured models; invalid settings are left to the system checks and first use."""
        from django_dataflow import (
            checks,  # noqa: F401  (registers the system checks)
            conf,
        )
        from django_dataflow.registry import registry

        configured = conf.model_settings() if not conf.find_problems(conf.raw_settings()) else []
        registry().populate(configured)
