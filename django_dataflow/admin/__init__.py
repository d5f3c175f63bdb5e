"""The Django admin of django-dataflow: the model registry, workflow definitions (JSON editor, run
now, schedules, stored triggers, follow-ups, graph), stored model-change triggers, run history
(re-run, cancel, graph), the dashboard and the audit trail. See docs/admin.md."""

from __future__ import annotations

from django.contrib import admin

from django_dataflow.admin.audit import AuditEntryAdmin
from django_dataflow.admin.definitions import WorkflowDefinitionAdmin
from django_dataflow.admin.registered import RegisteredModelAdmin
from django_dataflow.admin.runs import WorkflowRunAdmin
from django_dataflow.admin.triggers import ModelTriggerRuleAdmin
from django_dataflow.models import (
    AuditEntry,
    ModelTriggerRule,
    RegisteredModel,
    WorkflowDefinition,
    WorkflowRun,
)

__all__ = [
    "AuditEntryAdmin", "ModelTriggerRuleAdmin", "RegisteredModelAdmin", "WorkflowDefinitionAdmin",
    "WorkflowRunAdmin",
]

admin.site.register(RegisteredModel, RegisteredModelAdmin)
admin.site.register(WorkflowDefinition, WorkflowDefinitionAdmin)
admin.site.register(WorkflowRun, WorkflowRunAdmin)
admin.site.register(AuditEntry, AuditEntryAdmin)
admin.site.register(ModelTriggerRule, ModelTriggerRuleAdmin)
