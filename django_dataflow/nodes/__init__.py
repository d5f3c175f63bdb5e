"""Node classes: the ModelNode base, one mixin per operation, and the class factory."""

#: Every operation a registered model gets a node for, in the order they are listed.
OPERATION_NAMES: tuple[str, ...] = (
    "Create",
    "Read",
    "Update",
    "Delete",
    "List",
    "Count",
    "Aggregate",
    "BulkCreate",
    "BulkUpdate",
    "BulkDelete",
    "BulkUpsert",
)
