"""Django model permissions per node, checked before any node runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_dataflow import access
from django_dataflow.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django_dataflow.workflow.graph import Workflow

#: Params naming fields through relations: checked before the run, as far as they are static.
PATH_PARAMS = ("filter", "conditions", "order_by", "pipeline")


def required_permissions(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(node id, node type, 'app_label.codename') for every permission the workflow's nodes need."""
    needed = []
    for node in workflow.nodes:
        cls = workflow.node_class(node.id)
        for action in cls.permissions:
            needed.append((node.id, node.type, access.permission_name(cls.model, action)))
    return needed


def check_permissions(workflow: Workflow, user: Any) -> None:
    """Raise PermissionDenied naming the node and permission; user=None means trusted code.

    Besides each node's own permission, names in static filters, order_by and pipelines that reach
    other models need view permission on them (see access.Access.check_path). Names arriving at run
    time (placeholders, connections) are checked when the node resolves them.
    """
    if user is None:
        return
    run_access = access.current()
    if run_access is None or run_access.user is not user:
        with access.active(user):
            check_permissions(workflow, user)
        return
    for node_id, node_type, permission in required_permissions(workflow):
        if not run_access.has_perm(permission):
            raise PermissionDenied(
                f"node '{node_id}' ({node_type}) needs permission '{permission}'",
                node_id=node_id,
                permission=permission,
            )
    for node in workflow.nodes:
        static = {name: node.params[name] for name in PATH_PARAMS if name in node.params}
        if not static:
            continue
        cls = workflow.node_class(node.id)
        try:
            # Only PermissionDenied matters here: build() already reported every other problem.
            cls.check(static, set(node.params) | {c.target_param for c in workflow.incoming[node.id]})
        except PermissionDenied as exc:
            raise for_node(exc, node_id=node.id, node_type=node.type) from None


def for_node(exc: PermissionDenied, *, node_id: str, node_type: str) -> PermissionDenied:
    """The same refusal, naming the node it happened in."""
    return PermissionDenied(
        f"node '{node_id}' ({node_type}): {exc}", node_id=node_id, permission=exc.permission
    )
