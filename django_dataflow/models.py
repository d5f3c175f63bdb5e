"""The app's own tables: the run history (WorkflowRun) and named workflows (WorkflowDefinition)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models

if TYPE_CHECKING:
    from django_dataflow.workflow.graph import Workflow


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
    # The error's class name, so that wait() re-raises e.g. RecordNotFound as RecordNotFound.
    error_type = models.CharField(max_length=100, blank=True, default="")
    definition = models.CharField(
        max_length=100, blank=True, default="", db_index=True,
        help_text="Name of the WorkflowDefinition the run came from, if any.",
    )
    definition_version = models.PositiveIntegerField(null=True, blank=True)
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


class WorkflowDefinition(models.Model):
    """A named workflow stored once and triggered by name: django_dataflow.run("name", ...)."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    workflow = models.JSONField(help_text="The workflow's to_dict() form; validated on save.")
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Goes up by one each time a changed workflow is saved."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "workflow definition"

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Validate and normalise the workflow, bumping the version when it changed."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "workflow" in update_fields:
            # Stored in its canonical to_dict() form, so equal workflows compare equal.
            self.workflow = self.build().to_dict()
            if self._bump_version() and update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "version"}
        super().save(*args, **kwargs)

    def build(self) -> Workflow:
        """The validated Workflow (raises WorkflowValidationError listing every problem)."""
        from django_dataflow.workflow.graph import Workflow

        return Workflow.from_dict(self._as_dict())

    def clean(self) -> None:
        """Model validation (forms, the admin): the workflow must build."""
        from django_dataflow.exceptions import WorkflowValidationError

        super().clean()
        try:
            self.build()
        except WorkflowValidationError as exc:
            raise ValidationError({"workflow": exc.errors}) from exc

    def _as_dict(self) -> Any:
        # A Workflow or a WorkflowBuilder may be assigned directly; store its dict form.
        workflow = self.workflow
        if hasattr(workflow, "build") and not isinstance(workflow, dict):
            workflow = workflow.build()
        if hasattr(workflow, "to_dict"):
            workflow = workflow.to_dict()
        return workflow

    def _bump_version(self) -> bool:
        if self._state.adding or self.pk is None:
            return False
        stored = (
            type(self)._default_manager.using(self._state.db or "default")
            .filter(pk=self.pk).values_list("workflow", "version").first()
        )
        if stored is None or stored[0] == self.workflow:
            return False
        self.version = stored[1] + 1
        return True
