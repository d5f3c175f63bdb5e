"""Generate one node class per operation for a registered model, like DRF's ModelViewSet
composes one mixin per action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_dataflow.nodes import OPERATION_NAMES
from django_dataflow.nodes.aggregate import AggregateMixin
from django_dataflow.nodes.base import ModelNode
from django_dataflow.nodes.bulk import BulkCreateMixin, BulkDeleteMixin, BulkUpdateMixin
from django_dataflow.nodes.crud import CreateMixin, DeleteMixin, ReadMixin, UpdateMixin
from django_dataflow.nodes.listing import CountMixin, ListMixin
from django_dataflow.nodes.upsert import BulkUpsertMixin

if TYPE_CHECKING:
    from django_dataflow.registry import ModelEntry

#: Operation name -> the mixin implementing it (keys are OPERATION_NAMES, in order).
OPERATIONS: dict[str, type] = {
    "Create": CreateMixin,
    "Read": ReadMixin,
    "Update": UpdateMixin,
    "Delete": DeleteMixin,
    "List": ListMixin,
    "Count": CountMixin,
    "Aggregate": AggregateMixin,
    "BulkCreate": BulkCreateMixin,
    "BulkUpdate": BulkUpdateMixin,
    "BulkDelete": BulkDeleteMixin,
    "BulkUpsert": BulkUpsertMixin,
}


assert tuple(OPERATIONS) == OPERATION_NAMES, "OPERATIONS and OPERATION_NAMES disagree"


def build_node_classes(entry: ModelEntry) -> dict[str, type[ModelNode]]:
    """One class per operation, named '{Name}{Op}Node'; only type() calls, no model introspection."""
    classes: dict[str, type[ModelNode]] = {}
    for operation, mixin in OPERATIONS.items():
        type_name = f"{entry.name}{operation}Node"
        classes[operation] = type(
            type_name,
            (mixin, ModelNode),
            {
                "__module__": __name__,
                "__qualname__": type_name,
                "__doc__": f"{operation} node for {entry.model._meta.label}.",
                "model": entry.model,
                "entry": entry,
                "type_name": type_name,
            },
        )
    return classes
