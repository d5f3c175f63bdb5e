"""A workflow drawn as inline SVG: nodes (id and type) in topological layers, connections labelled
'source_path -> target_param', the failing node of a failed run highlighted.

Built with the dashboard charts' SVG helpers (charts.py): every label passes through format_html.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_dataflow.admin.charts import _px, _svg

#: Pixels: a node's box, the gaps between layers (columns) and between nodes of a layer.
NODE_WIDTH, NODE_HEIGHT, LAYER_GAP, ROW_GAP, MARGIN = 210, 48, 110, 28, 16
#: Longest node id, detail line (type, seconds) and connection label drawn, in characters; the
#: full text is in the tooltip.
MAX_ID, MAX_DETAIL, MAX_EDGE = 24, 34, 22
#: Fill and stroke per node state.
COLOURS = {
    "plain": ("#f4f8fa", "#79aec8"),
    "ran": ("#e6f4ea", "#3a7f4f"),
    "failed": ("#f8d7da", "#ba2121"),
}


def _nodes(workflow: Any) -> list[Mapping[str, Any]]:
    # Recorded run workflows are shown as stored: anything that is not a node with an id is ignored.
    nodes = workflow.get("nodes", []) if isinstance(workflow, Mapping) else []
    return [n for n in nodes if isinstance(n, Mapping) and n.get("id") is not None]


def _edges(workflow: Any, ids: set[str]) -> list[tuple[str, str, str]]:
    connections = workflow.get("connections", []) if isinstance(workflow, Mapping) else []
    edges = []
    for c in connections:
        if isinstance(c, Mapping) and str(c.get("source")) in ids and str(c.get("target")) in ids:
            label = f"{c.get('source_path') or ''} -> {c.get('target_param') or ''}"
            edges.append((str(c["source"]), str(c["target"]), label))
    return edges


def layers(workflow: Any) -> list[list[str]]:
    """Node ids by topological layer: a node sits one layer after the deepest node feeding it."""
    ids = [str(n["id"]) for n in _nodes(workflow)]
    known = set(ids)
    inputs: dict[str, set[str]] = {i: set() for i in ids}
    for source, target, _ in _edges(workflow, known):
        if source != target:
            inputs[target].add(source)
    depth: dict[str, int] = {}
    remaining = list(ids)
    while remaining:
        ready = [i for i in remaining if inputs[i] <= depth.keys()]
        if not ready:
            # A cycle (only in a stored record that never validated): draw the rest in one last layer.
            last = max(depth.values(), default=-1) + 1
            depth.update(dict.fromkeys(remaining, last))
            break
        for i in ready:
            depth[i] = max((depth[s] + 1 for s in inputs[i]), default=0)
        remaining = [i for i in remaining if i not in depth]
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for i in ids:  # in the workflow's own node order within a layer
        result[depth[i]].append(i)
    return result


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def workflow_svg(
    workflow: Any, *, failed_node: str = "", timings: Mapping[str, Any] | None = None,
    title: str = "Workflow graph",
) -> SafeString:
    """The workflow dict (to_dict() form) as an inline SVG; failed_node is highlighted and nodes
    with an entry in timings (a run's node_stats) show their seconds."""
    nodes = {str(n["id"]): n for n in _nodes(workflow)}
    timings = timings or {}
    by_layer = layers(workflow)
    position: dict[str, tuple[float, float]] = {}
    for col, ids in enumerate(by_layer):
        for row, node_id in enumerate(ids):
            position[node_id] = (MARGIN + col * (NODE_WIDTH + LAYER_GAP),
                                 MARGIN + row * (NODE_HEIGHT + ROW_GAP))
    columns, rows = len(by_layer), max((len(ids) for ids in by_layer), default=0)
    width = max(2 * MARGIN + columns * NODE_WIDTH + max(columns - 1, 0) * LAYER_GAP, 2 * MARGIN + NODE_WIDTH)
    height = max(2 * MARGIN + rows * NODE_HEIGHT + max(rows - 1, 0) * ROW_GAP, 2 * MARGIN + NODE_HEIGHT)
    parts = [format_html(
        '<defs><marker id="dataflow-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{}"/></marker>'
        '</defs>', "#666",
    )]
    for source, target, label in _edges(workflow, set(nodes)):
        (x1, y1), (x2, y2) = position[source], position[target]
        x1, y1, x2, y2 = x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, x2, y2 + NODE_HEIGHT / 2
        parts.append(format_html(
            '<g class="dataflow-edge" data-source="{}" data-target="{}">'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#666" marker-end="url(#dataflow-arrow)"/>'
            '<text x="{}" y="{}" font-size="9" text-anchor="middle" fill="#333">{}</text>'
            '<title>{} {} {}</title></g>',
            source, target, _px(x1), _px(y1), _px(x2), _px(y2),
            _px((x1 + x2) / 2), _px((y1 + y2) / 2 - 4), _short(label, MAX_EDGE), source, label, target,
        ))
    for node_id, node in nodes.items():
        x, y = position[node_id]
        stat = timings.get(node_id)
        state = "failed" if node_id == failed_node else "ran" if isinstance(stat, Mapping) else "plain"
        fill, stroke = COLOURS[state]
        node_type = str(node.get("type") or "?")
        detail = node_type
        if state == "ran" and isinstance(stat, Mapping):  # "ran" means it is (said again for mypy)
            detail = f"{node_type} · {float(stat.get('seconds') or 0):.3f} s"
        elif state == "failed":
            detail = f"{node_type} · failed"
        parts.append(format_html(
            '<g class="dataflow-node dataflow-node-{}" data-node="{}">'
            '<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="{}" stroke-width="{}"/>'
            '<text x="{}" y="{}" font-size="12" font-weight="bold">{}</text>'
            '<text x="{}" y="{}" font-size="10" fill="#444">{}</text>'
            '<title>{} ({})</title></g>',
            state, node_id, _px(x), _px(y), NODE_WIDTH, NODE_HEIGHT, fill, stroke,
            3 if state == "failed" else 1,
            _px(x + 8), _px(y + 19), _short(node_id, MAX_ID),
            _px(x + 8), _px(y + 37), _short(detail, MAX_DETAIL),
            node_id, detail,
        ))
    return _svg(width, height, title, parts, css="dataflow-chart dataflow-graph")

