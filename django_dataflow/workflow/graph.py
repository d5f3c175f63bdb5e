"""The validated, immutable workflow graph and its JSON form."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise

from django_dataflow import bounds
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.values import jsonable
from django_dataflow.workflow.templating import PLACEHOLDER, names_in

if TYPE_CHECKING:
    from django_dataflow.nodes.base import ModelNode

FORMAT_VERSION = 1


@dataclass(frozen=True)
class NodeSpec:
    """One node of a workflow: its id, node type name and static params."""

    id: str
    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Connection:
    """Feeds a value found at source_path in the source's result into the target's param."""

    source: str
    source_path: str
    target: str
    target_param: str

    def __str__(self) -> str:
        return f"{self.source}.{self.source_path} -> {self.target}.{self.target_param}"


class Workflow:
    """A validated DAG of nodes; build one with WorkflowBuilder or Workflow.from_dict()."""

    def __init__(
        self,
        nodes: list[NodeSpec],
        connections: list[Connection],
        classes: dict[str, type[ModelNode]],
        order: list[str],
    ) -> None:
        self.nodes: tuple[NodeSpec, ...] = tuple(nodes)
        self.connections: tuple[Connection, ...] = tuple(connections)
        self.order: tuple[str, ...] = tuple(order)
        self._classes = classes
        self._by_id = {node.id: node for node in nodes}
        incoming: dict[str, list[Connection]] = {node.id: [] for node in nodes}
        for connection in connections:
            incoming[connection.target].append(connection)
        self.incoming: dict[str, tuple[Connection, ...]] = {k: tuple(v) for k, v in incoming.items()}

    def __repr__(self) -> str:
        return f"<Workflow nodes={list(self._by_id)}>"

    def node(self, node_id: str) -> NodeSpec:
        """The node with this id."""
        return self._by_id[node_id]

    def node_class(self, node_id: str) -> type[ModelNode]:
        """The generated class of a node."""
        return self._classes[node_id]

    @cached_property
    def input_names(self) -> frozenset[str]:
        """Every '{{name}}' the params use; a run must supply all of them."""
        names: set[str] = set()
        for node in self.nodes:
            names |= names_in(node.params)
        return frozenset(names)

    @cached_property
    def row_inputs(self) -> frozenset[str]:
        """Inputs used only as a whole bulk row param ('"data": "{{rows}}"'): bounded by row count.

        Bulk rows are checked value by value as the node reads them, so a 100k-row load passed as
        an input is not refused for its total size; any other use of the same input still is.
        """
        whole: set[str] = set()
        elsewhere: set[str] = set()
        for node in self.nodes:
            rows = bounds.ROW_PARAMS & set(getattr(self._classes[node.id], "PARAMS", ()))
            for key, value in node.params.items():
                match = PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
                if key in rows and match:
                    whole.add(match.group(1))
                else:
                    elsewhere |= names_in(value)
        return frozenset(whole - elsewhere)

    @cached_property
    def templated(self) -> frozenset[str]:
        """Ids of nodes whose params hold placeholders."""
        return frozenset(node.id for node in self.nodes if names_in(node.params))

    @cached_property
    def writes(self) -> bool:
        """Whether any node writes (read-only workflows need no transaction)."""
        return any(cls.writes for cls in self._classes.values())

    def to_dict(self, *, lossy: bool = False) -> dict[str, Any]:
        """A JSON-safe dict; Workflow.from_dict(w.to_dict()) rebuilds an equal workflow.

        Values JSON cannot carry (a generator as bulk 'data', a set) are errors, unless lossy=True
        (for run records), which writes a '<type>' placeholder instead.
        """
        return {
            "version": FORMAT_VERSION,
            "nodes": [
                {"id": n.id, "type": n.type, "params": _jsonable_params(n, lossy)} for n in self.nodes
            ],
            "connections": [
                {
                    "source": c.source,
                    "source_path": c.source_path,
                    "target": c.target,
                    "target_param": c.target_param,
                }
                for c in self.connections
            ],
        }

    def to_json(self, **kwargs: Any) -> str:
        """to_dict() as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Any) -> Workflow:
        """Rebuild and validate a workflow from its dict form (as stored or sent to Celery)."""
        from django_dataflow.workflow.builder import WorkflowBuilder

        if not isinstance(data, Mapping):
            raise WorkflowValidationError(f"a workflow must be an object, not {type(data).__name__}")
        unknown = set(data) - {"version", "nodes", "connections"}
        if unknown:
            raise WorkflowValidationError(
                f"unknown workflow keys {sorted(map(str, unknown))}; valid: connections, nodes, version"
            )
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise WorkflowValidationError(
                f"workflow format version {data.get('version')!r} is not supported "
                f"(expected {FORMAT_VERSION})"
            )
        nodes, connections = data.get("nodes"), data.get("connections", [])
        if not isinstance(nodes, list) or not isinstance(connections, list):
            raise WorkflowValidationError("'nodes' and 'connections' must be lists")
        bounds.check_workflow_size(len(nodes), len(connections))
        builder = WorkflowBuilder()
        for index, item in enumerate(nodes):
            _require_keys(item, f"nodes[{index}]", {"id", "type"}, {"params"})
            builder.add_node(item["type"], item["id"], item.get("params") or {})
        for index, item in enumerate(connections):
            keys = {"source", "source_path", "target", "target_param"}
            _require_keys(item, f"connections[{index}]", keys, set())
            builder.add_connection(
                item["source"], item["source_path"], item["target"], item["target_param"]
            )
        return builder.build()

    @classmethod
    def from_json(cls, text: str | bytes) -> Workflow:
        """from_dict() of a JSON string."""
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise WorkflowValidationError(
                f"workflow JSON is nested too deeply (at most {bounds.MAX_DEPTH} levels in params)"
            ) from None
        except ValueError as exc:  # UnicodeDecodeError (invalid UTF-8) included
            raise WorkflowValidationError(f"workflow JSON is not valid: {exc}") from None
        return cls.from_dict(data)


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which JSON (and PostgreSQL's jsonb) do not.
    raise ValueError(f"{name} is not a JSON value")


def _jsonable_params(node: NodeSpec, lossy: bool) -> dict[str, Any]:
    data = node.params.get("data")
    if data is not None and not isinstance(data, (list, tuple, str, Mapping)) and not lossy:
        raise WorkflowValidationError(
            f"node '{node.id}': 'data' is a {type(data).__name__}; only lists can be serialized"
        )
    return {str(k): _json_param(v, node.id, str(k), lossy) for k, v in node.params.items()}


_SCALARS = (str, int, float, bool, type(None))
_CONVERTIBLE = (dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal, uuid.UUID)


def _json_param(value: Any, node_id: str, path: str, lossy: bool) -> Any:
    """JSON form of a param value; refuses what JSON cannot carry instead of stringifying it."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, _CONVERTIBLE):
        return jsonable(value)
    if isinstance(value, Mapping):
        return {str(k): _json_param(v, node_id, f"{path}.{k}", lossy) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_param(v, node_id, f"{path}.{i}", lossy) for i, v in enumerate(value)]
    if isinstance(value, Promise):
        return str(value)
    if lossy:
        return f"<{type(value).__name__}>"
    raise WorkflowValidationError(
        f"node '{node_id}': param '{path}' is a {type(value).__name__}, "
        "which cannot be serialized to JSON"
    )


def _require_keys(item: Any, where: str, required: set[str], optional: set[str]) -> None:
    if not isinstance(item, Mapping):
        raise WorkflowValidationError(f"{where} must be an object, not {type(item).__name__}")
    missing = required - set(item)
    unknown = set(item) - required - optional
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {sorted(missing)}")
        if unknown:
            parts.append(f"unknown {sorted(map(str, unknown))}")
        raise WorkflowValidationError(f"{where}: {', '.join(parts)}")
