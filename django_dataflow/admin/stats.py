"""The numbers behind the admin dashboard, computed from WorkflowRun rows.

Runs per status and failing definitions are counted by the database over the whole window. Node
latency and rows written come from each run's node_stats, read in Python from the newest
DATAFLOW['ADMIN_DASHBOARD_MAX_RUNS'] runs of the window (node_stats is JSON; its node types live in
the run's workflow JSON), so a busy window is sampled, and the page says so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_dataflow import conf
from django_dataflow.models import RunStatus, WorkflowRun
from django_dataflow.registry import get_node_class

#: Definitions listed under "failing definitions".
FAILING_SHOWN = 10


@dataclass
class NodeLatency:
    """Timings of one node type: how many node runs, and their p50/p95 in seconds."""

    node_type: str
    count: int
    p50: float
    p95: float


@dataclass
class FailingDefinition:
    """A definition with failed runs in the window."""

    name: str
    failed: int
    total: int
    last_failed_at: dt.datetime | None
    last_error: str


@dataclass
class Dashboard:
    """Everything the dashboard page shows, for one window of days."""

    since: dt.datetime
    days: list[dt.date]
    runs_per_day: dict[dt.date, dict[str, int]]
    status_totals: dict[str, int]
    node_latency: list[NodeLatency]
    rows_written_per_day: dict[dt.date, int]
    rows_written: int
    runs_sampled: int
    runs_with_timings: int
    sample_limited: bool
    cache_hit_rate: float | None
    failing: list[FailingDefinition] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list: always a value that occurred."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def cache_hit_rate() -> float | None:
    """The workflow cache's hit rate (0..1), or None when no cache metrics exist.

    The cache and its metrics live in django_dataflow.metrics when installed; until a metrics module
    offers cache_hit_rate() (or while it has counted nothing) the dashboard shows "not available".
    """
    try:
        from django_dataflow import metrics  # type: ignore[attr-defined]
    except ImportError:
        return None
    getter = getattr(metrics, "cache_hit_rate", None)
    rate = getter() if callable(getter) else None
    return None if rate is None else float(rate)


def collect(days: int, *, now: dt.datetime | None = None, max_runs: int | None = None,
            using: str | None = None) -> Dashboard:
    """The dashboard's numbers for the last `days` days (today included), by the current time zone."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    limit = conf.admin_dashboard_max_runs() if max_runs is None else max_runs
    runs = WorkflowRun.objects.using(using or conf.database()).filter(created_at__gte=since)

    per_day: dict[dt.date, dict[str, int]] = defaultdict(dict)
    totals: dict[str, int] = dict.fromkeys(RunStatus.values, 0)
    grouped = (runs.annotate(day=TruncDate("created_at")).values("day", "status")
               .annotate(n=Count("pk")).order_by())
    for row in grouped:
        per_day[row["day"]][row["status"]] = row["n"]
        totals[row["status"]] = totals.get(row["status"], 0) + row["n"]

    timings: dict[str, list[float]] = defaultdict(list)
    written_per_day: dict[dt.date, int] = defaultdict(int)
    sampled = with_timings = 0
    writes: dict[str, bool] = {}
    recent = runs.order_by("-created_at").values_list("created_at", "status", "workflow", "node_stats")
    for created_at, status, workflow, node_stats in recent[:limit].iterator(chunk_size=200):
        sampled += 1
        if not node_stats:
            continue
        with_timings += 1
        types = {n.get("id"): n.get("type") for n in (workflow or {}).get("nodes", [])}
        day = timezone.localdate(created_at)
        for node_id, stat in node_stats.items():
            node_type = types.get(node_id) or "?"
            seconds = stat.get("seconds")
            if isinstance(seconds, (int, float)):
                timings[node_type].append(float(seconds))
            # A failed run was rolled back: it wrote nothing, whatever its nodes reported.
            if status == RunStatus.SUCCEEDED and _writes(node_type, writes):
                written_per_day[day] += int(stat.get("rows") or 0)

    latency = sorted(
        (NodeLatency(t, len(v), percentile(v, 0.50), percentile(v, 0.95)) for t, v in timings.items()),
        key=lambda item: (-item.p95, item.node_type),
    )
    window = [first + dt.timedelta(days=i) for i in range(days)]
    return Dashboard(
        since=since, days=window, runs_per_day=dict(per_day), status_totals=totals,
        node_latency=latency, rows_written_per_day=dict(written_per_day),
        rows_written=sum(written_per_day.values()), runs_sampled=sampled, runs_with_timings=with_timings,
        sample_limited=sampled >= limit and sum(totals.values()) > limit,
        cache_hit_rate=cache_hit_rate(), failing=failing_definitions(runs),
    )


def failing_definitions(runs: Any) -> list[FailingDefinition]:
    """Definitions with failed runs among `runs`, most failures first, with their latest error."""
    rows = (runs.exclude(definition="").values("definition")
            .annotate(failed=Count("pk", filter=Q(status=RunStatus.FAILED)), total=Count("pk"),
                      last=Max("created_at", filter=Q(status=RunStatus.FAILED)))
            .filter(failed__gt=0).order_by("-failed", "definition")[:FAILING_SHOWN])
    found = []
    for row in rows:
        last = (runs.filter(definition=row["definition"], status=RunStatus.FAILED)
                .order_by("-created_at").values_list("error", flat=True).first())
        found.append(
            FailingDefinition(row["definition"], row["failed"], row["total"], row["last"], last or "")
        )
    return found


def _writes(node_type: str, known: dict[str, bool]) -> bool:
    if node_type not in known:
        cls = get_node_class(node_type)
        known[node_type] = bool(cls is not None and cls.writes)
    return known[node_type]
