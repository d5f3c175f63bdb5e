"""Prometheus metrics of runs, nodes, rows written, the result cache and audit entries.

They live in prometheus_client's default registry, so a project's own exporter (django-prometheus,
a multiprocess collector for Celery workers) exposes them too; django_dataflow.urls serves them as
well (views.metrics).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

#: Node latency buckets in seconds: sub-millisecond cached reads up to minute-long bulk loads.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

NODE_SECONDS = Histogram(
    "dataflow_node_duration_seconds", "Node execution time by node type, operation and outcome.",
    ["node_type", "operation", "outcome", "tenant"], buckets=BUCKETS,
)
NODE_EXECUTIONS = Counter(
    "dataflow_node_executions", "Node executions by node type, operation and outcome (ok, error).",
    ["node_type", "operation", "outcome", "tenant"],
)
RUNS = Counter("dataflow_workflow_runs", "Workflow runs by final status.", ["status", "tenant"])
ROWS_WRITTEN = Counter(
    "dataflow_rows_written", "Rows written by nodes, by operation and model.",
    ["operation", "model", "tenant"],
)
CACHE_REQUESTS = Counter(
    "dataflow_cache_requests",
    "Cacheable node reads by result: hit, miss (stored), bypass (not cacheable now), error.",
    ["result", "tenant"],
)
CACHE_ERRORS = Counter(
    "dataflow_cache_errors", "Failed calls to the cache backend (Redis down or slow).", ["operation"]
)
SLOW_NODES = Counter(
    "dataflow_slow_nodes", "Nodes slower than DATAFLOW['SLOW_NODE_SECONDS'].", ["node_type", "tenant"]
)
AUDIT_ENTRIES = Counter(
    "dataflow_audit_entries", "Audit entries written (committed or not), by model and action.",
    ["model", "action"],
)


#: Labelled children by label values: labels() costs a lock and a lookup on every call.
_NODE_CHILDREN: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
_RUN_CHILDREN: dict[tuple[str, str], Any] = {}


def node_finished(node_type: str, operation: str, outcome: str, seconds: float, tenant: str) -> None:
    """Count one node execution and its duration."""
    key = (node_type, operation, outcome, tenant)
    children = _NODE_CHILDREN.get(key)
    if children is None:
        children = _NODE_CHILDREN[key] = (NODE_SECONDS.labels(*key), NODE_EXECUTIONS.labels(*key))
    children[0].observe(seconds)
    children[1].inc()


def run_finished(status: str, tenant: str) -> None:
    """Count a workflow run by its final status (succeeded, failed)."""
    child = _RUN_CHILDREN.get((status, tenant))
    if child is None:
        child = _RUN_CHILDREN[(status, tenant)] = RUNS.labels(status, tenant)
    child.inc()


def rows_written(operation: str, model: str, rows: int, tenant: str) -> None:
    """Add the rows a write node reported."""
    if rows:
        ROWS_WRITTEN.labels(operation, model, tenant).inc(rows)


def cache_request(result: str, tenant: str) -> None:
    """Count a cacheable read: hit, miss, bypass or error."""
    CACHE_REQUESTS.labels(result, tenant).inc()


def cache_error(operation: str) -> None:
    """Count a failed cache backend call."""
    CACHE_ERRORS.labels(operation).inc()


def slow_node(node_type: str, tenant: str) -> None:
    """Count a node slower than the threshold."""
    SLOW_NODES.labels(node_type, tenant).inc()


def audit_written(model: str, action: str, count: int) -> None:
    """Count audit entries written."""
    AUDIT_ENTRIES.labels(model, action).inc(count)


def cache_hit_rate() -> float | None:
    """Hits / (hits + misses) of cacheable reads counted by this process, or None before the first.

    Bypassed reads (not cacheable at that moment) and errors are left out: the rate says how often
    the cache answered when it could have.
    """
    counts = {"hit": 0.0, "miss": 0.0}
    for metric in CACHE_REQUESTS.collect():
        for sample in metric.samples:
            result = sample.labels.get("result")
            if sample.name.endswith("_total") and result in counts:
                counts[result] += sample.value
    total = counts["hit"] + counts["miss"]
    return None if total == 0 else counts["hit"] / total
