"""Signal receivers that keep schedules' PeriodicTasks in step with their rows (connected in apps.py)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save


def _schedule_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        from django_dataflow.triggers.schedules import sync_schedule

        sync_schedule(instance)


def _schedule_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from django_dataflow.triggers.schedules import remove_schedule

    remove_schedule(instance)


def _definition_saved(
    sender: Any, instance: Any, raw: bool = False, created: bool = False, **kwargs: Any
) -> None:
    # A new definition has no schedules yet; a changed one may have been enabled or disabled.
    if not raw and not created:
        from django_dataflow.triggers.schedules import sync_definition

        sync_definition(instance)


def connect() -> None:
    """Connect the receivers (idempotent: fixed dispatch uids)."""
    from django_dataflow.models import DefinitionSchedule, WorkflowDefinition

    post_save.connect(_schedule_saved, sender=DefinitionSchedule, dispatch_uid="dataflow_schedule_sync")
    post_delete.connect(_schedule_deleted, sender=DefinitionSchedule, dispatch_uid="dataflow_schedule_remove")
    post_save.connect(_definition_saved, sender=WorkflowDefinition, dispatch_uid="dataflow_definition_sync")
