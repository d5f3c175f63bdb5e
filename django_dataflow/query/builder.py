"""QueryBuilder: a fluent way to write List params, or to get the queryset they stand for."""

from __future__ import annotations

import copy
from typing import Any

from django.db import models
from django.db.models import QuerySet

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.query import filters
from django_dataflow.query.ordering import may_be_null, order_by, projection, sort_expression
from django_dataflow.registry import ModelEntry, get_entry


class QueryBuilder:
    """Builds List-node params for a registered model; every step is validated as it is added."""

    def __init__(self, model: type[models.Model] | str) -> None:
        entry = get_entry(model)
        if entry is None:
            raise WorkflowValidationError(f"{model!r} is not registered with django_dataflow")
        self.entry: ModelEntry = entry
        self._filters: list[dict[str, Any]] = []
        self._params: dict[str, Any] = {}

    def _copy(self, **params: Any) -> QueryBuilder:
        clone = copy.copy(self)
        clone._filters = list(self._filters)
        clone._params = {**self._params, **params}
        return clone

    def filter(self, spec: dict[str, Any]) -> QueryBuilder:
        """AND another filter onto the query."""
        filters.check(self.entry, spec)
        clone = self._copy()
        clone._filters.append(spec)
        return clone

    def sort(self, spec: Any) -> QueryBuilder:
        """Set order_by (list like ["-created_at"] or object like {"created_at": -1})."""
        order_by(self.entry, spec)
        return self._copy(order_by=spec)

    order_by = sort

    def limit(self, value: int) -> QueryBuilder:
        """Set the limit (0 to DATAFLOW['MAX_LIMIT'])."""
        from django_dataflow.nodes.listing import _limit

        _limit({"limit": value})
        return self._copy(limit=value)

    def offset(self, value: int) -> QueryBuilder:
        """Set the offset (0 or more)."""
        from django_dataflow.nodes.listing import _offset

        _offset({"offset": value})
        return self._copy(offset=value)

    def fields(self, names: list[str]) -> QueryBuilder:
        """Set the projection."""
        projection(self.entry, names)
        return self._copy(fields=list(names))

    @property
    def filter_spec(self) -> dict[str, Any]:
        """The combined filter document."""
        if not self._filters:
            return {}
        if len(self._filters) == 1:
            return dict(self._filters[0])
        return {"$and": list(self._filters)}

    def to_params(self) -> dict[str, Any]:
        """Params for the model's List node."""
        params = dict(self._params)
        if self._filters:
            params["filter"] = self.filter_spec
        return params

    def to_queryset(self, using: str | None = None) -> QuerySet[Any]:
        """The Django queryset these params select, in the List node's order (order_by, else
        Meta.ordering, then the primary key as tie-breaker) with offset and limit applied."""
        from django_dataflow.nodes.listing import sort_keys

        qs = self.entry.model._default_manager.using(using).filter(
            filters.translate(self.entry, self.filter_spec)
        )
        keys = sort_keys(self.entry, self._params.get("order_by"))
        qs = qs.order_by(*(sort_expression(p.lookup, d, nullable=may_be_null(p)) for p, d in keys))
        start = self._params.get("offset", 0)
        if "limit" in self._params:
            return qs[start : start + self._params["limit"]]
        return qs[start:] if start else qs

    def aggregate(self, pipeline: list[dict[str, Any]], using: str | None = None) -> list[dict[str, Any]]:
        """Run an aggregation pipeline over the records this builder's filter selects."""
        from django_dataflow.query import aggregation

        stages = ([{"$match": self.filter_spec}] if self._filters else []) + list(pipeline)
        return aggregation.run(self.entry, self.entry.model._default_manager.using(using), stages)

    def count(self, using: str | None = None) -> int:
        """How many records match the filter (paging ignored)."""
        return (
            self.entry.model._default_manager.using(using)
            .filter(filters.translate(self.entry, self.filter_spec))
            .count()
        )
