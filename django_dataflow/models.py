"""The app's own tables: the run history (WorkflowRun)."""

from __future__ import annotations

import uuid

from django.db import models


class RunStatus(models.TextChoices):
    """Life cycle of a workflow run."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class WorkflowRun(models.Model):
    """One recorded execution of a workflow (LocalRuntime when asked, Celery always)."""

    run_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.JSONField(help_text="The workflow's to_dict() form.")
    inputs = models.JSONField(default=dict, blank=True)
    tenant = models.CharField(max_length=63, blank=True, default="", db_index=True)
    # The submitting user's pk as text: no FK, so runs survive user deletion and tenant schemas.
    user_id = models.CharField(max_length=64, blank=True, default="")
    runtime = models.CharField(max_length=16, default="local")
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True
    )
    node_stats = models.JSONField(
        default=dict, blank=True, help_text="Per node: seconds taken and rows affected."
    )
    results = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_node = models.CharField(max_length=200, blank=True, default="")
    celery_task_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "workflow run"

    def __str__(self) -> str:
        return f"{self.run_id} ({self.status})"

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
