"""The app's own tables: the run history (WorkflowRun), named workflows (WorkflowDefinition) with
their schedules (DefinitionSchedule) and stored model-change triggers (ModelTriggerRule), and the
persistent model registry (RegisteredModel, ModelSchemaVersion)."""

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
    # What started the run (docs/triggers.md): a schedule, a model change or a finished run.
    trigger = models.JSONField(
        null=True, blank=True,
        help_text='What started the run: {"kind": "schedule" | "model" | "chain", ...}; empty when called.',
    )
    parent_run_id = models.UUIDField(
        null=True, blank=True, help_text="The run whose success, failure or writes started this one."
    )
    chain_depth = models.PositiveIntegerField(
        default=0, help_text="Runs between this one and a run nothing triggered (bounded by MAX_CHAIN_DEPTH)."
    )
    follow_ups = models.JSONField(
        default=list, blank=True,
        help_text="Follow-up runs this run started (or was refused), one entry per follow-up definition.",
    )
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
        # Runs are found by run_id, by recency, per tenant, per definition and per submitting user
        # (GET runs/ of the HTTP API lists a caller's own runs) (docs/decisions.md).
        indexes = [
            models.Index(fields=["created_at"], name="dataflow_run_created"),
            models.Index(fields=["tenant", "created_at"], name="dataflow_run_tenant"),
            models.Index(fields=["definition", "created_at"], name="dataflow_run_definition"),
            models.Index(fields=["tenant", "user_id", "created_at"], name="dataflow_run_user"),
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
    enabled = models.BooleanField(
        default=True, help_text="Disabled definitions are not started by schedules, triggers or chains."
    )
    on_success = models.JSONField(
        default=list, blank=True,
        help_text="Names of definitions started when a run of this one succeeds (inputs: its results).",
    )
    on_failure = models.JSONField(
        default=list, blank=True,
        help_text="Names of definitions started when a run of this one fails (inputs: the error).",
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
        from django_dataflow.triggers.chains import follow_up_problems

        problems = {f: p for f in ("on_success", "on_failure") if (p := follow_up_problems(self, f))}
        if problems:
            raise ValidationError(problems)
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
        """Model validation (forms, the admin): the workflow must build, follow-ups be name lists."""
        from django_dataflow.exceptions import WorkflowValidationError
        from django_dataflow.triggers.chains import follow_up_problems

        super().clean()
        problems = {field: follow_up_problems(self, field) for field in ("on_success", "on_failure")}
        try:
            self.build()
        except WorkflowValidationError as exc:
            problems["workflow"] = exc.errors
        problems = {field: found for field, found in problems.items() if found}
        if problems:
            raise ValidationError(problems)

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


class OverlapPolicy(models.TextChoices):
    """What a schedule does when the previous run of its definition and tenant has not finished."""

    SKIP = "skip", "Skip this fire"
    ALLOW = "allow", "Start another run"


class DefinitionSchedule(models.Model):
    """When a WorkflowDefinition runs by itself: one django-celery-beat PeriodicTask per row.

    The PeriodicTask (named ``django_dataflow.schedule.<pk>``) is written from this row whenever the
    row or its definition is saved or deleted, and by ``manage.py dataflow_schedules --sync``.
    """

    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.CASCADE, related_name="schedules")
    crontab = models.CharField(
        max_length=200, blank=True, default="",
        help_text='Five crontab fields: "minute hour day-of-month month day-of-week" (e.g. "0 3 * * *").',
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Run every this many seconds (instead of a crontab)."
    )
    inputs = models.JSONField(default=dict, blank=True, help_text="The inputs of every run it starts.")
    tenant = models.CharField(
        max_length=63, blank=True, default="", help_text="The tenant schema to run in; empty: no tenant."
    )
    all_tenants = models.BooleanField(default=False, help_text="One run per tenant (django-tenants).")
    overlap = models.CharField(max_length=8, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run_id = models.UUIDField(null=True, blank=True)
    skipped_fires = models.PositiveIntegerField(
        default=0, help_text="Fires skipped because the previous run had not finished (overlap=skip)."
    )
    last_skipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["definition", "pk"]
        verbose_name = "definition schedule"

    def __str__(self) -> str:
        when = self.crontab or f"every {self.interval_seconds}s"
        return f"{self.definition_id}: {when}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuse an invalid schedule (ValidationError naming the field) before writing it."""
        from django_dataflow.triggers.schedules import require_beat, schedule_problems

        require_beat()  # before the row exists: its PeriodicTask is written right after
        problems = schedule_problems(self)
        if problems:
            raise ValidationError(problems)
        super().save(*args, **kwargs)

    @property
    def task_name(self) -> str:
        """The name of the django-celery-beat PeriodicTask that runs this schedule."""
        return f"django_dataflow.schedule.{self.pk}"

    def clean(self) -> None:
        """A crontab or an interval (not both), valid fields, and a tenant or all tenants."""
        from django_dataflow.triggers.schedules import schedule_problems

        super().clean()
        problems = schedule_problems(self)
        if problems:
            raise ValidationError(problems)


class TriggerEvent(models.TextChoices):
    """The row changes a model-change trigger reacts to."""

    CREATED = "created", "created"
    UPDATED = "updated", "updated"
    DELETED = "deleted", "deleted"


class ModelTriggerRule(models.Model):
    """A model-change trigger stored as a row (docs/triggers.md#stored-triggers): fires like on_commit_of().

    Every process loads the enabled rows into the same registry as on_commit_of() triggers
    (triggers/stored.py): on its first database connection, again at most every
    DATAFLOW['TRIGGER_REFRESH_SECONDS'], and at once after a row is saved or deleted in it.
    """

    model = models.CharField(
        max_length=200,
        help_text="The watched model, 'app_label.ModelName' (registered with django_dataflow).",
    )
    event = models.CharField(max_length=8, choices=TriggerEvent.choices)
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="model_triggers",
        help_text="The workflow definition each change starts.",
    )
    inputs = models.JSONField(
        default=dict, blank=True,
        help_text='Static inputs added to every run; "pk", "pks", "model" and "event" come from the change.',
    )
    per_row = models.BooleanField(
        default=False, help_text="Bulk node operations start one run per row instead of one with every pk."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "event", "pk"]
        verbose_name = "model trigger"

    def __str__(self) -> str:
        name = self.definition.name if self.definition_id is not None else "?"
        return f"{self.model} {self.event} -> {name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuse an invalid row (ValidationError naming the field) before writing it."""
        from django_dataflow.triggers.stored import rule_problems

        problems = rule_problems(self)
        if problems:
            raise ValidationError(problems)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """A registered model, a known event and definition, and inputs without the change's keys."""
        from django_dataflow.triggers.stored import rule_problems

        super().clean()
        problems = rule_problems(self)
        if problems:
            raise ValidationError(problems)


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


class AuditAction(models.TextChoices):
    """What an audited node did."""

    CREATE = "create", "create"
    UPDATE = "update", "update"
    DELETE = "delete", "delete"
    BULK_CREATE = "bulk_create", "bulk create"
    BULK_UPDATE = "bulk_update", "bulk update"
    BULK_DELETE = "bulk_delete", "bulk delete"
    BULK_UPSERT = "bulk_upsert", "bulk upsert"


class AuditEntry(models.Model):
    """One audited write of a workflow node, inserted in the run's own transaction."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    run_id = models.CharField(max_length=64, blank=True, default="")
    node_id = models.CharField(max_length=200, blank=True, default="")
    model = models.CharField(max_length=200, help_text="The model's 'app_label.ModelName'.")
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    object_pk = models.CharField(
        max_length=255, blank=True, default="",
        help_text="The written row's primary key (empty for a bulk op).",
    )
    count = models.PositiveIntegerField(default=1, help_text="Rows the entry stands for.")
    # The user's pk as text, as on WorkflowRun: entries outlive users and tenant schemas.
    actor = models.CharField(max_length=64, blank=True, default="")
    tenant = models.CharField(max_length=63, blank=True, default="")
    changes = models.JSONField(
        default=dict, blank=True,
        help_text="field -> [old, new]; bulk ops: the filter and the values set, or nothing.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["model", "object_pk"], name="dataflow_audit_object"),
            models.Index(fields=["run_id"], name="dataflow_audit_run"),
            models.Index(fields=["created_at"], name="dataflow_audit_created"),
        ]

    def __str__(self) -> str:
        target = f" {self.object_pk}" if self.object_pk else f" ({self.count} rows)"
        return f"{self.action} {self.model}{target}"


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
