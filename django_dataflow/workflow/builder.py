"""WorkflowBuilder: collect nodes and connections, then build() a validated Workflow."""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping
from typing import Any

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
            problems += self._check_connection(connection, classes, connected)
        order, cycle = _order(self._nodes, self._connections, classes)
        if cycle:
            problems.append(f"the connections form a cycle: {' -> '.join(cycle)}")
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
        if not isinstance(node.id, str) or not node.id or len(node.id) > MAX_ID_LENGTH:
            return [
                f"node ids must be non-empty strings of at most {MAX_ID_LENGTH} characters, "
                f"got {node.id!r}"
            ]
        cls = get_node_class(node.type) if isinstance(node.type, str) else None
        if cls is None:
            known = node_types()
            close = difflib.get_close_matches(str(node.type), known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            return [
                f"unknown node type {node.type!r} for node '{node.id}'.{hint} "
                f"Valid node types: {valid_names(known)}"
            ]
        classes[node.id] = cls
        return []

    def _check_connection(
        self, c: Connection, classes: dict[str, Any], connected: dict[str, set[str]]
    ) -> list[str]:
        fields = (c.source, c.source_path, c.target, c.target_param)
        if not all(isinstance(f, str) and f for f in fields):
            return [
                f"connection {fields!r}: source, source_path, target and target_param "
                "must be non-empty strings"
            ]
        ids = [n.id for n in self._nodes if isinstance(n.id, str)]
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


def _find_cycle(edges: dict[str, set[str]], remaining: set[str]) -> list[str]:
    # Every node left over has a predecessor that is also left over, so walking predecessors
    # must come back to a node already seen: that loop is a cycle.
    predecessors = {n: sorted(s for s in edges if n in edges[s] and s in remaining) for n in remaining}
    current = min(remaining)
    path: list[str] = []
    while current not in path:
        path.append(current)
        current = predecessors[current][0]
    loop = path[path.index(current) :]
    loop.reverse()
    return [*loop, loop[0]]
