"""The app's own tables: the run history (WorkflowRun), named workflows (WorkflowDefinition) and
the persistent model registry (RegisteredModel, ModelSchemaVersion)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

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
    tenant = models.CharField(max_length=63, blank=True, default="")
    # The submitting user's pk as text: no FK, so runs survive user deletion and tenant schemas.
    user_id = models.CharField(max_length=64, blank=True, default="")
    runtime = models.CharField(max_length=16, default="local")
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING
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
        max_length=100, blank=True, default="",
        help_text="Name of the WorkflowDefinition the run came from, if any.",
    )
    definition_version = models.PositiveIntegerField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "workflow run"
        # The admin's actions (docs/admin.md) and the HTTP API's ad-hoc runs (docs/api.md); each
        # also needs the model permissions of the nodes.
        permissions = [
            ("rerun_workflowrun", "Can re-run a failed workflow run"),
            ("cancel_workflowrun", "Can cancel a pending workflow run"),
            ("run_adhoc_workflow", "Can run ad-hoc workflows (a workflow body) through the HTTP API"),
        ]
        # Few indexes, none on a column a run's life changes (status, timings, results): every
        # run is inserted once and updated twice (claimed, finished), and with no indexed column
        # touched PostgreSQL updates the row in place (HOT) instead of writing every index again.
        # Runs are found by run_id, by recency, per tenant and per definition (docs/decisions.md).
        indexes = [
            models.Index(fields=["created_at"], name="dataflow_run_created"),
            models.Index(fields=["tenant", "created_at"], name="dataflow_run_tenant"),
            models.Index(fields=["definition", "created_at"], name="dataflow_run_definition"),
        ]

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
        permissions = [("run_workflowdefinition", "Can run a workflow definition")]

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


class RegisteredModel(models.Model):
    """One application's record of one registered model: its table, fields and schema hash.

    Written after migrate (post_migrate) and by manage.py dataflow_sync, never at start-up. Several
    applications sharing a database each keep their own row per model; the drift check compares
    them by table.
    """

    application = models.CharField(max_length=100, help_text="DATAFLOW['APPLICATION'] of the recorder.")
    app_label = models.CharField(max_length=100)
    model_name = models.CharField(max_length=100, help_text="The model's class name.")
    node_name = models.CharField(max_length=100, help_text="Prefix of the node types, e.g. 'Product'.")
    db_table = models.CharField(max_length=255, db_index=True)
    fields = models.JSONField(default=list, help_text="Concrete fields: name, type, null, default, ...")
    hidden_fields = models.JSONField(default=list, blank=True, help_text="register(exclude_fields=...).")
    schema_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1, help_text="Goes up by one when the hash changes.")
    managed = models.BooleanField(default=True, help_text="Whether migrations create the table.")
    dynamic = models.BooleanField(
        default=False, help_text="Recorded from a discovered model, not from code of this application."
    )
    migrates = models.BooleanField(
        default=True, help_text="DATAFLOW['ALLOW_MIGRATIONS'] of the recording application."
    )
    first_registered = models.DateTimeField(default=timezone.now)
    last_registered = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["app_label", "model_name", "application"]
        verbose_name = "registered model"
        constraints = [
            models.UniqueConstraint(
                fields=["application", "app_label", "model_name"], name="dataflow_registered_model_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} v{self.version} ({self.application})"

    @property
    def label(self) -> str:
        """The model's 'app_label.ModelName' in the recording application."""
        return f"{self.app_label}.{self.model_name}"


class ModelSchemaVersion(models.Model):
    """The history of a RegisteredModel: one row per version, with the fields it had then."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    schema_hash = models.CharField(max_length=64)
    fields = models.JSONField(default=list)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["registered_model", "version"]
        verbose_name = "model schema version"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="dataflow_schema_version_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.registered_model_id} v{self.version} {self.schema_hash[:12]}"


class ApiToken(models.Model):
    """A bearer token of the HTTP API: only its SHA-256 is stored; the raw token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataflow_api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly-import'.")
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters, to recognise it."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 (hex).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused after this; empty: never.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Refused from this moment on.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.name})"

    @classmethod
    def issue(
        cls, user: Any, name: str, *, expires_at: Any = None, using: str | None = None
    ) -> tuple[ApiToken, str]:
        """Create a token for user; returns (row, raw token). The raw token is never stored."""
        from django_dataflow.api import tokens

        raw = tokens.generate()
        token = cls(user=user, name=name, prefix=tokens.prefix(raw), key_hash=tokens.digest(raw),
                    expires_at=expires_at)
        token.save(using=using)
        return token, raw

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def revoke(self) -> None:
        """Refuse the token from now on (kept for the record)."""
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
