#!/usr/bin/env python
"""The result cache and the audit trail on PostgreSQL, against the same work without them.

1. Cached vs uncached List: a one-node List workflow answered from django-redis (a hit) against
   the same node with "cache": false (PostgreSQL), alternated; medians, p95 and the ratio, for a
   dashboard query (filter + sort over the table) and the cheapest List (a primary-key range).
   Target: the hit at least 5x faster at p50.
2. A 95/5 read/write mix: 95% List/Count reads over 8 and over 40 distinct queries, 5% Update
   nodes on the same table (each invalidates every Product entry); the hit ratio and the read
   medians with and without the cache.
3. The cost of auditing BulkCreate of --bulk-rows rows (default 100,000; COPY): no audit, one
   entry per op (audit=True) and, at a tenth of the rows, one entry per row (audit="rows").

    .venv/bin/python benchmarks/cache.py            # 100k-row table, 300 iterations
    .venv/bin/python benchmarks/cache.py --quick    # smoke run
Environment: DATAFLOW_BENCH_URL (PostgreSQL, default dataflow_cache_bench), DATAFLOW_BENCH_REDIS_URL
(default redis://127.0.0.1:6379/8).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Timer, median_us, p95, setup_django

DEFAULT_URL = "postgres://root@127.0.0.1:5432/dataflow_cache_bench"
REDIS_URL = os.environ.get("DATAFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
TARGET = 5.0
FIELDS = ["id", "name", "sku", "price", "stock", "active"]


def caching(audit: bool | str = False) -> Any:
    """override_settings with the result cache on a django-redis alias (and an audit mode)."""
    from django.conf import settings
    from django.test import override_settings

    caches = {
        **settings.CACHES,
        "bench": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"dataflow-bench-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    dataflow = {**settings.DATAFLOW, "CACHE": {"ALIAS": "bench", "TTL": 600}, "AUDIT": audit}
    return override_settings(CACHES=caches, DATAFLOW=dataflow)


def one_node(node_type: str, params: dict[str, Any]) -> Any:
    from django_dataflow import LocalRuntime, WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node(node_type, "q", params)
    workflow, runtime = builder.build(), LocalRuntime()
    return lambda: runtime.execute(workflow)[0]["q"]


def hits() -> dict[str, float]:
    from prometheus_client import REGISTRY

    return {
        r: REGISTRY.get_sample_value("dataflow_cache_requests_total", {"result": r, "tenant": ""}) or 0.0
        for r in ("hit", "miss", "bypass", "error")
    }


def compare(title: str, params: dict[str, Any], iterations: int) -> float:
    """One List node answered from the cache against the same node with "cache": false."""
    cached = one_node("ProductListNode", params)
    uncached = one_node("ProductListNode", {**params, "cache": False})
    assert cached() == uncached() and cached() == uncached()
    timer = Timer(cached, uncached)
    timer.run(iterations, warmup=20)
    ratio = statistics.median(timer.raw_ns) / statistics.median(timer.node_ns)
    print(f"   {title}")
    print(
        f"     cached (hit)    median {median_us(timer.node_ns):9.1f} us"
        f"   p95 {p95(timer.node_ns) / 1000:9.1f} us"
    )
    print(
        f"     uncached node   median {median_us(timer.raw_ns):9.1f} us"
        f"   p95 {p95(timer.raw_ns) / 1000:9.1f} us"
    )
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"     uncached / cached at p50: {ratio:.1f}x ({verdict} the >= {TARGET:.0f}x target)")
    return ratio


def cached_vs_uncached(iterations: int) -> None:
    from shop.models import Product

    print("1. List nodes on LocalRuntime: a hit (django-redis) against the same node on PostgreSQL")
    compare(
        "100 records, filter + sort over the whole table (a dashboard query)",
        {
            "filter": {"price": {"$lt": 50}, "active": True},
            "order_by": ["-price", "sku"],
            "limit": 100,
            "fields": FIELDS,
        },
        iterations,
    )
    first = Product.objects.order_by("pk").values_list("pk", flat=True)[5_000]
    compare(
        "20 records by primary-key range (an index scan: the cheapest List there is)",
        {"filter": {"id": {"$gte": first}}, "order_by": ["id"], "limit": 20, "fields": FIELDS},
        iterations,
    )


def mix(operations: int, distinct: int, *, baseline: bool, seed: int = 95) -> None:
    """95% reads over `distinct` queries (half List, half Count), 5% Update nodes on the table."""
    from shop.models import Product

    rng = random.Random(seed)
    queries = []
    for i in range(distinct):
        if i % 2:
            queries.append(("ProductCountNode", {"filter": {"stock": {"$gte": i * 2}}}))
        else:
            queries.append(
                (
                    "ProductListNode",
                    {"filter": {"id": {"$gte": 1000 * i}}, "order_by": ["id"], "limit": 20, "fields": FIELDS},
                )
            )
    pks = list(Product.objects.order_by("?").values_list("pk", flat=True)[:500])
    plan = [
        ("w", rng.choice(pks)) if rng.random() < 0.05 else ("r", rng.randrange(len(queries)))
        for _ in range(operations)
    ]
    results = {}
    for label, use_cache in (("cached", True), ("uncached", False)):
        if label == "uncached" and not baseline:
            break
        readers = [one_node(t, {**p, "cache": use_cache}) for t, p in queries]
        before = hits()
        read_ns, write_ns = [], []
        for kind, arg in plan:
            t0 = time.perf_counter_ns()
            if kind == "r":
                readers[arg]()
                read_ns.append(time.perf_counter_ns() - t0)
            else:
                one_node("ProductUpdateNode", {"id": arg, "fields": {"stock": rng.randrange(97)}})()
                write_ns.append(time.perf_counter_ns() - t0)
        after = hits()
        results[label] = (read_ns, write_ns, {k: after[k] - before[k] for k in after})
    read_c, write_c, counts = results["cached"]
    lookups = counts["hit"] + counts["miss"] + counts["bypass"] + counts["error"]
    writes = sum(1 for kind, _ in plan if kind == "w")
    print(
        f"   {distinct} distinct reads, {operations} operations ({writes} writes):"
        f" hit ratio {counts['hit'] / lookups:.1%} ({int(counts['hit'])} hits,"
        f" {int(counts['miss'])} misses, {int(counts['error'])} errors)"
    )
    line = f"     read median cached {median_us(read_c):.1f} us"
    if baseline:
        read_u = results["uncached"][0]
        line += (
            f", uncached {median_us(read_u):.1f} us; mean {statistics.mean(read_c) / 1000:.1f} us"
            f" vs {statistics.mean(read_u) / 1000:.1f} us"
        )
    print(line + f"; write (Update node + generation bump) median {median_us(write_c):.1f} us")


def audit_cost(rows: int, repeats: int) -> None:
    from django.conf import settings
    from django.test import override_settings

    from django_dataflow import LocalRuntime, WorkflowBuilder
    from django_dataflow.models import AuditEntry
    from shop.models import Product

    def load(n: int, tag: str) -> int:
        builder = WorkflowBuilder()
        data = [
            {"name": f"bulk {i}", "sku": f"B{tag}-{i}", "price": "1.50", "stock": i % 97} for i in range(n)
        ]
        builder.add_node("ProductBulkCreateNode", "b", {"data": data, "batch_size": 10_000})
        workflow = builder.build()
        t0 = time.perf_counter_ns()
        LocalRuntime().execute(workflow)
        elapsed = time.perf_counter_ns() - t0
        Product.objects.filter(sku__startswith=f"B{tag}-").delete()
        return elapsed

    def with_mode(mode: bool | str) -> Any:
        return override_settings(DATAFLOW={**settings.DATAFLOW, "AUDIT": mode})

    modes: dict[str, list[int]] = {"off": [], "per op": []}
    for r in range(repeats):
        order = [("off", False), ("per op", True)] if r % 2 == 0 else [("per op", True), ("off", False)]
        for name, mode in order:
            with with_mode(mode):
                modes[name].append(load(rows, f"{r}{name[0]}"))
    small = max(rows // 10, 1)
    per_row: dict[str, list[int]] = {"off": [], "rows": []}
    for r in range(max(repeats // 2, 1)):
        for name, mode in (("off", False), ("rows", "rows")):
            with with_mode(mode):
                per_row[name].append(load(small, f"s{r}{name[0]}"))
    entries = AuditEntry.objects.count()
    AuditEntry.objects.all().delete()
    off, per_op = statistics.median(modes["off"]), statistics.median(modes["per op"])
    print(f"3. Audit cost on BulkCreate (COPY), medians of {repeats} alternated loads")
    print(
        f"   {rows} rows: no audit {off / 1e6:.1f} ms, one entry per op {per_op / 1e6:.1f} ms "
        f"({per_op / off:.3f}x, +{(per_op - off) / 1e6:.1f} ms)"
    )
    off_s, rows_s = statistics.median(per_row["off"]), statistics.median(per_row["rows"])
    print(
        f"   {small} rows: no audit {off_s / 1e6:.1f} ms, one entry per row {rows_s / 1e6:.1f} ms "
        f"({rows_s / off_s:.2f}x)   [{entries} entries written in all, then removed]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the product table")
    parser.add_argument("-n", "--iterations", type=int, default=300)
    parser.add_argument("--mix", type=int, default=2000, help="operations in the 95/5 mix")
    parser.add_argument("--bulk-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5, help="loads per audit mode")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small numbers everywhere")
    parser.add_argument("--sections", default="123", help="which parts to run, e.g. 3 or 12")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.iterations, args.mix, args.bulk_rows, args.repeats = 5_000, 30, 300, 5_000, 2
    os.environ.setdefault("DJANGO_DEBUG", "0")
    where = setup_django("postgres", os.environ.get("DATAFLOW_BENCH_URL", DEFAULT_URL), empty_tables=False)
    from query import load

    load(args.rows)
    print(f"database {where}, {args.rows} products, Redis {REDIS_URL}")
    with caching():
        if "1" in args.sections:
            cached_vs_uncached(args.iterations)
        if "2" in args.sections:
            print("2. 95/5 read/write mix (each write invalidates every Product entry)")
            mix(args.mix, 8, baseline=True)
            mix(args.mix, 40, baseline=False)
    if "3" in args.sections:
        audit_cost(args.bulk_rows, args.repeats)


if __name__ == "__main__":
    main()
