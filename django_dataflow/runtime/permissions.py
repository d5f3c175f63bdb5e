"""Django model permissions per node, checked before any node runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_permission_codename

from django_dataflow.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django_dataflow.workflow.graph import Workflow


def required_permissions(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(node id, node type, 'app_label.codename') for every permission the workflow needs."""
    needed = []
    for node in workflow.nodes:
        cls = workflow.node_class(node.id)
        meta = cls.model._meta
        for action in cls.permissions:
            needed.append((node.id, node.type, f"{meta.app_label}.{get_permission_codename(action, meta)}"))
    return needed


def check_permissions(workflow: Workflow, user: Any) -> None:
    """Raise PermissionDenied naming the node and permission; user=None means trusted code."""
    if user is None:
        return
    for node_id, node_type, permission in required_permissions(workflow):
        if not user.has_perm(permission):
            raise PermissionDenied(
                f"node '{node_id}' ({node_type}) needs permission '{permission}'",
                node_id=node_id,
                permission=permission,
            )
