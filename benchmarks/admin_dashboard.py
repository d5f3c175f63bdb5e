#!/usr/bin/env python
"""What the admin dashboard costs to compute over a window of recorded runs.

  dashboard   django_dataflow.admin.stats.collect(days=14): counts per day and status and the
              failing definitions (database), p50/p95 per node type and rows written (node_stats
              JSON of the newest ADMIN_DASHBOARD_MAX_RUNS runs, read in Python)
  raw counts  the hand-written ORM query for the runs-per-day-and-status table alone
              (WorkflowRun.objects.filter(created_at__gte=...).annotate(TruncDate).values().annotate(Count))

The ratio says what reading the node timings adds to the one aggregate the database can do alone.
Both sides alternate after a warm-up (benchmarks/harness.py); medians, p95 and the ratio are printed.
There is no target: the figures are quoted in docs/admin.md.

    .venv/bin/python benchmarks/admin_dashboard.py --url postgres://root@127.0.0.1:5432/NAME
    .venv/bin/python benchmarks/admin_dashboard.py --sqlite
    .venv/bin/python benchmarks/admin_dashboard.py --quick          # 1,000 runs, 10 iterations
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import DEFAULT_URL, Timer, p95, setup_django

WORKFLOW = {
    "version": 1,
    "nodes": [
        {"id": "read", "type": "ProductListNode", "params": {"limit": 10}},
        {"id": "load", "type": "OrderBulkCreateNode", "params": {"data": "{{rows}}"}},
        {"id": "count", "type": "OrderCountNode", "params": {}},
    ],
    "connections": [],
}


def make_runs(count: int, prefix: str) -> None:
    """`count` runs over the last 14 days: 90% succeeded, 10% failed, three nodes timed each."""
    from django.utils import timezone

    from django_dataflow.models import RunStatus, WorkflowRun

    now = timezone.now()
    rows = []
    for i in range(count):
        failed = i % 10 == 0
        rows.append(WorkflowRun(
            workflow=WORKFLOW, inputs={"rows": "<list>"}, definition=f"{prefix}-{i % 7}",
            status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
            error="node 'load' failed: boom" if failed else "",
            node_stats={"read": {"seconds": 0.001 + (i % 13) / 10_000, "rows": 10},
                        "load": {"seconds": 0.02 + (i % 17) / 1_000, "rows": 500},
                        **({} if failed else {"count": {"seconds": 0.0005, "rows": 1}})},
        ))
    WorkflowRun.objects.bulk_create(rows, batch_size=1000)
    # created_at is auto_now_add: spread the runs over the window afterwards.
    for day in range(14):
        ids = [r.pk for r in rows[day::14]]
        WorkflowRun.objects.filter(pk__in=ids).update(created_at=now - dt.timedelta(days=day, minutes=5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--quick", action="store_true", help="1,000 runs, 10 iterations (smoke test)")
    parser.add_argument("--runs", type=int, default=None, help="recorded runs in the window (default 5000)")
    parser.add_argument("-n", "--iterations", type=int, default=None, help="timed iterations (default 30)")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", DEFAULT_URL),
                        help=f"PostgreSQL URL (default: $DATABASE_URL or {DEFAULT_URL})")
    args = parser.parse_args()
    runs = args.runs or (1000 if args.quick else 5000)
    iterations = args.iterations or (10 if args.quick else 30)
    backend = "sqlite" if args.sqlite else "postgres"
    where = setup_django(backend, args.url)
    prefix = f"bench{os.getpid()}"
    from django.db.models import Count
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from django_dataflow.admin import stats
    from django_dataflow.models import WorkflowRun

    mine = WorkflowRun.objects.filter(definition__startswith=prefix)
    try:
        from django import get_version

        make_runs(runs, prefix)
        since = timezone.now() - dt.timedelta(days=14)
        total = WorkflowRun.objects.filter(created_at__gte=since).count()
        print(f"{backend} ({where}), Django {get_version()}, python {sys.version.split()[0]}; "
              f"{total} runs in the window ({runs} made here), {iterations} iterations of each side, "
              "alternated")

        def dashboard() -> None:
            data = stats.collect(14)
            assert data.node_latency and data.runs_sampled == min(total, 5000)

        def raw_counts() -> None:
            list(WorkflowRun.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
                 .values("day", "status").annotate(n=Count("pk")).order_by())

        timer = Timer(dashboard, raw_counts)
        timer.run(iterations, warmup=2)
        node, raw = statistics.median(timer.node_ns) / 1e6, statistics.median(timer.raw_ns) / 1e6
        print(f"{'':12}{'median':>10}{'p95':>10}")
        print(f"{'dashboard':12}{node:8.1f}ms{p95(timer.node_ns) / 1e6:8.1f}ms")
        print(f"{'raw counts':12}{raw:8.1f}ms{p95(timer.raw_ns) / 1e6:8.1f}ms")
        print(f"ratio dashboard/raw counts: {node / raw:.1f}x; per run read: "
              f"{node * 1000 / min(total, 5000):.1f}us")
    finally:
        mine.delete()
        if backend == "sqlite":
            from django.db import connections

            connections.close_all()
            shutil.rmtree(Path(where).parent, ignore_errors=True)


if __name__ == "__main__":
    main()
