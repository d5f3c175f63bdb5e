"""The Django admin of django-dataflow: the model registry, workflow definitions (JSON editor, run
now), run history (re-run, cancel) and the dashboard. See docs/admin.md."""

from __future__ import annotations

from django.contrib import admin

from django_dataflow.admin.definitions import WorkflowDefinitionAdmin
from django_dataflow.admin.registered import RegisteredModelAdmin
from django_dataflow.admin.runs import WorkflowRunAdmin
from django_dataflow.models import RegisteredModel, WorkflowDefinition, WorkflowRun

__all__ = ["RegisteredModelAdmin", "WorkflowDefinitionAdmin", "WorkflowRunAdmin"]

admin.site.register(RegisteredModel, RegisteredModelAdmin)
admin.site.register(WorkflowDefinition, WorkflowDefinitionAdmin)
admin.site.register(WorkflowRun, WorkflowRunAdmin)
