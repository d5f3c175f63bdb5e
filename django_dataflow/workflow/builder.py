"""WorkflowBuilder: collect nodes and connections, then build() a validated Workflow."""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping
from typing import Any

from django_dataflow import bounds
from django_dataflow.exceptions import WorkflowValidationError, valid_names
from django_dataflow.registry import get_node_class, node_types
from django_dataflow.workflow.graph import Connection, NodeSpec, Workflow

MAX_ID_LENGTH = 200


class WorkflowBuilder:
    """Accumulates nodes and connections; every check happens in build()."""

    def __init__(self) -> None:
        self._nodes: list[NodeSpec] = []
        self._connections: list[Connection] = []

    def add_node(self, node_type: str, node_id: str, params: Mapping[str, Any] | None = None) -> str:
        """Add a node; returns its id. Missing params may still come from connections."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise WorkflowValidationError(
                f"params of node {node_id!r} must be an object, not {type(params).__name__}",
                node_id=node_id if isinstance(node_id, str) else None,
            )
        self._nodes.append(NodeSpec(node_id, node_type, dict(params)))
        return node_id

    def add_connection(self, source: str, source_path: str, target: str, target_param: str) -> None:
        """Feed source's result at source_path (dotted, e.g. 'records.0.id') into target_param."""
        self._connections.append(Connection(source, source_path, target, target_param))

    def build(self) -> Workflow:
        """Validate everything and return the Workflow, or raise listing every problem."""
        bounds.check_workflow_size(len(self._nodes), len(self._connections))
        problems: list[str] = []
        classes: dict[str, Any] = {}
        seen: set[str] = set()
        for node in self._nodes:
            if isinstance(node.id, str) and node.id in seen:
                problems.append(f"duplicate node id '{node.id}'")
                continue
            if isinstance(node.id, str):
                seen.add(node.id)
            problems += self._check_node(node, classes)
        connected: dict[str, set[str]] = {n.id: set() for n in self._nodes if isinstance(n.id, str)}
        for connection in self._connections:
            problems += self._check_connection(connection, classes, connected, seen)
        order, cycle = _order(self._nodes, self._connections, classes)
        if cycle:
            shown = cycle if len(cycle) <= 21 else [*cycle[:10], "...", *cycle[-10:]]
            size = "" if len(cycle) <= 21 else f" ({len(cycle) - 1} nodes)"
            problems.append(f"the connections form a cycle: {' -> '.join(shown)}{size}")
        # The first node of a duplicated id is the one checked (later ones are already reported).
        first: dict[str, NodeSpec] = {}
        for n in self._nodes:
            if isinstance(n.id, str):
                first.setdefault(n.id, n)
        for node in first.values():
            cls = classes.get(node.id)
            if cls is not None and node.id in connected:
                problems += [
                    f"node '{node.id}' ({node.type}): {p}" for p in cls.check(node.params, connected[node.id])
                ]
        if problems:
            raise WorkflowValidationError(problems)
        return Workflow(self._nodes, self._connections, classes, order)

    def _check_node(self, node: NodeSpec, classes: dict[str, Any]) -> list[str]:
        if not _is_name(node.id):
            return [
                f"node ids must be non-empty strings of at most {MAX_ID_LENGTH} printable "
                f"characters, got {_short(node.id)}"
            ]
        cls = get_node_class(node.type) if _is_name(node.type) else None
        if cls is None:
            known = node_types()
            close = difflib.get_close_matches(node.type, known, n=3) if _is_name(node.type) else []
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            return [
                f"unknown node type {_short(node.type)} for node '{node.id}'.{hint} "
                f"Valid node types: {valid_names(known)}"
            ]
        classes[node.id] = cls
        return bounds.check_params(node.id, node.params, rows=cls.PARAMS)

    def _check_connection(
        self, c: Connection, classes: dict[str, Any], connected: dict[str, set[str]], ids: set[str]
    ) -> list[str]:
        fields = (c.source, c.source_path, c.target, c.target_param)
        if not all(_is_name(f) for f in fields):
            return [
                f"connection ({', '.join(_short(f) for f in fields)}): source, source_path, target "
                f"and target_param must be non-empty strings of at most {MAX_ID_LENGTH} printable "
                "characters"
            ]
        problems = [
            f"connection {c}: no node '{node_id}'; nodes: {valid_names(ids)}"
            for node_id in dict.fromkeys((c.source, c.target))
            if node_id not in ids
        ]
        if problems:
            return problems
        if any(not part for part in c.source_path.split(".") + c.target_param.split(".")):
            return [f"connection {c}: paths must not have empty segments"]
        source_cls = classes.get(c.source)
        if source_cls is not None:
            keys = source_cls.result_keys()
            head = c.source_path.split(".", 1)[0]
            if keys is not None and head not in keys:
                problems.append(
                    f"connection {c}: {source_cls.type_name} results have no '{head}'; "
                    f"they have: {valid_names(keys)}"
                )
        targets = connected.setdefault(c.target, set())
        if c.target_param in targets:
            problems.append(f"connection {c}: '{c.target_param}' of '{c.target}' is already connected")
        targets.add(c.target_param)
        return problems


def _order(
    nodes: list[NodeSpec], connections: list[Connection], classes: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Dependency order, ties broken by the order nodes were added; or a cycle's node ids."""
    position = {n.id: i for i, n in enumerate(nodes) if isinstance(n.id, str)}
    edges: dict[str, set[str]] = {n: set() for n in position}
    indegree = dict.fromkeys(position, 0)
    for c in connections:
        if not (_is_name(c.source) and _is_name(c.target)):
            continue  # already reported by _check_connection
        if c.source in position and c.target in position and c.target not in edges[c.source]:
            edges[c.source].add(c.target)
            indegree[c.target] += 1
    ready = [(i, n) for n, i in position.items() if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, current = heapq.heappop(ready)
        order.append(current)
        for nxt in edges[current]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, (position[nxt], nxt))
    if len(order) == len(position):
        return order, []
    return order, _find_cycle(edges, {n for n in position if n not in order})


def _is_name(value: Any) -> bool:
    """A node id, node type or connection part: a printable, non-empty, bounded string."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _short(value: Any) -> str:
    """repr() of a value for an error message, cut short (hostile input can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 400 else f"{text[:200]}... ({len(text)} characters)"


def _find_cycle(edges: dict[str, set[str]], remaining: set[str]) -> list[str]:
    # Every node left over has a predecessor that is also left over, so walking predecessors
    # must come back to a node already seen: that loop is a cycle. Linear in the edges.
    predecessor: dict[str, str] = {}
    for source in sorted(remaining):
        for target in edges[source]:
            if target in remaining and (target not in predecessor or source < predecessor[target]):
                predecessor[target] = source
    current = min(remaining)
    path: list[str] = []
    seen: set[str] = set()
    while current not in seen:
        path.append(current)
        seen.add(current)
        current = predecessor[current]
    loop = path[path.index(current) :]
    loop.reverse()
    return [*loop, loop[0]]
