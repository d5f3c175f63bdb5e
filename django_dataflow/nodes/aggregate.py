"""Aggregate: a MongoDB-style pipeline answered by one SQL query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.query import aggregation
from django_dataflow.runtime.context import RunContext


class AggregateMixin:
    """Run a pipeline of $match, $group, $sort, $skip, $limit, $project and $count stages."""

    operation: ClassVar[str] = "Aggregate"
    permissions: ClassVar[tuple[str, ...]] = ("view",)
    PARAMS: ClassVar[dict[str, str]] = {
        "pipeline": "List of stages: $match $group $sort $skip $limit $project $count.",
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Check the pipeline's stages, fields and accumulators when it is static."""
        if "pipeline" not in params and "pipeline" not in connected:
            return [f"{cls.type_name} needs 'pipeline'"]
        if "pipeline" not in params:
            return []
        try:
            aggregation.check(cls.entry, params["pipeline"])
        except WorkflowValidationError as exc:
            return exc.errors
        return []

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """{"results": [...]} in MongoDB's shape: group keys under _id, one key per accumulator."""
        return {"results": aggregation.run(cls.entry, cls.queryset(ctx), params.get("pipeline"))}
