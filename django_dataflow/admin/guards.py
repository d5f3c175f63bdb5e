"""Who may run, re-run or cancel from the admin: the action's custom permission, then the Django
model permissions every node of the workflow needs (the runtimes' own check, user=request.user)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_dataflow.exceptions import PermissionDenied, WorkflowValidationError
from django_dataflow.runtime.permissions import check_permissions
from django_dataflow.workflow.graph import Workflow

#: Action -> the custom permission it needs (declared in the models' Meta.permissions).
ACTION_PERMISSIONS = {
    "run": "django_dataflow.run_workflowdefinition",
    "rerun": "django_dataflow.rerun_workflowrun",
    "cancel": "django_dataflow.cancel_workflowrun",
}


def refusal(user: Any, action: str, workflow: Workflow | Mapping[str, Any]) -> str | None:
    """Why the user may not perform the action on this workflow, or None when allowed."""
    permission = ACTION_PERMISSIONS[action]
    if not user.has_perm(permission):
        return f"Refused: {action} needs the permission '{permission}'."
    try:
        built = workflow if isinstance(workflow, Workflow) else Workflow.from_dict(workflow)
    except WorkflowValidationError as exc:
        return f"Refused: the workflow does not validate any more: {exc}"
    try:
        check_permissions(built, user)
    except PermissionDenied as exc:
        return f"Refused: {exc}."
    return None
