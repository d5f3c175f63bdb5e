#!/usr/bin/env python
"""List and Aggregate nodes against the hand-written Django ORM queryset for the same question.

On a PostgreSQL table of --rows products (default 100,000; loaded once and reused), each
comparison alternates the node side (a pre-built one-node workflow on LocalRuntime) with the raw
side (the queryset a Django developer would write, returning values() dicts) and prints medians
and the node/raw ratio. Target: at most 1.2x at the median.

    .venv/bin/python benchmarks/query.py                # 100k rows, 200 iterations
    .venv/bin/python benchmarks/query.py --quick        # 30 iterations
    .venv/bin/python benchmarks/query.py --rows 1000000 -n 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Timer, p95, setup_django

DEFAULT_URL = "postgres://root@127.0.0.1:5432/dataflow_query_bench"
TARGET = 1.2


def load(rows: int) -> None:
    """Fill the product table with `rows` deterministic rows (kept between runs)."""
    from django.db import connection

    from shop.models import Order, Product, StockLevel

    if Product.objects.count() == rows:
        return
    Order.objects.all().delete()
    StockLevel.objects.all().delete()
    Product.objects.all().delete()
    batch = []
    for i in range(rows):
        batch.append(
            Product(
                name=f"{'Lamp' if i % 3 else 'lamp'} {i}",
                sku=f"SKU-{i:08d}",
                price=Decimal(i % 1000) / 10,
                stock=i % 97,
                active=i % 4 != 0,
                description=None if i % 10 == 0 else f"item {i % 50}",
            )
        )
        if len(batch) == 5000:
            Product.objects.bulk_create(batch)
            batch = []
    Product.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shop_product")


def scenarios() -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """name -> (node side, raw side), both answering the same question."""
    from django.db.models import Avg, Count, Q, Sum

    from django_dataflow import LocalRuntime, WorkflowBuilder
    from shop.models import Product

    runtime = LocalRuntime()
    fields = ["id", "name", "sku", "price", "stock", "active"]

    def node(node_type: str, params: dict[str, Any]) -> Callable[[], Any]:
        builder = WorkflowBuilder()
        builder.add_node(node_type, "q", params)
        workflow = builder.build()
        return lambda: runtime.execute(workflow)[0]["q"]

    cases = {
        "list filter+sort": (
            node("ProductListNode", {
                "filter": {"price": {"$lt": 50}, "active": True},
                "order_by": ["-price", "sku"], "limit": 100, "fields": fields,
            }),
            lambda: list(
                Product.objects.filter(price__lt=50, active=True)
                .order_by("-price", "sku", "pk").values(*fields)[:100]
            ),
        ),
        "list $or/$in": (
            node("ProductListNode", {
                "filter": {"$or": [{"stock": {"$in": [1, 2, 3]}}, {"name": {"$startswith": "lamp"}}]},
                "limit": 100, "fields": fields,
            }),
            lambda: list(
                Product.objects.filter(Q(stock__in=[1, 2, 3]) | Q(name__startswith="lamp"))
                .order_by("pk").values(*fields)[:100]
            ),
        ),
        "count filter": (
            node("ProductCountNode", {"filter": {"description": {"$ne": None}, "stock": {"$gte": 50}}}),
            lambda: Product.objects.filter(description__isnull=False, stock__gte=50).count(),
        ),
        "aggregate group": (
            node("ProductAggregateNode", {"pipeline": [
                {"$match": {"price": {"$gt": 10}}},
                {"$group": {"_id": "$active", "total": {"$sum": "$price"},
                            "avg_stock": {"$avg": "$stock"}, "n": {"$count": {}}}},
                {"$sort": {"total": -1}},
            ]}),
            lambda: list(
                Product.objects.filter(price__gt=10).values("active")
                .annotate(total=Sum("price"), avg_stock=Avg("stock"), n=Count("pk"))
                .order_by("-total")
            ),
        ),
        "aggregate 97 groups": (
            node("ProductAggregateNode", {"pipeline": [
                {"$group": {"_id": "$stock", "n": {"$count": {}}, "max": {"$max": "$price"}}},
                {"$sort": {"_id": 1}},
            ]}),
            lambda: list(
                Product.objects.values("stock").annotate(n=Count("pk"), max=Max_price())
                .order_by("stock")
            ),
        ),
    }
    node_rows = cases["list filter+sort"][0]()
    assert node_rows["count"] == 100 and len(cases["list filter+sort"][1]()) == 100
    return cases


def Max_price() -> Any:
    """Max('price'), imported late (Django is set up at run time)."""
    from django.db.models import Max

    return Max("price")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("-n", "--iterations", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="30 iterations")
    parser.add_argument("--url", default=os.environ.get("DATAFLOW_QUERY_BENCH_URL", DEFAULT_URL))
    args = parser.parse_args()
    iterations = args.iterations or (30 if args.quick else 200)
    setup_django("postgres", args.url, empty_tables=False)
    from django import get_version
    from django.conf import settings

    load(args.rows)
    print(f"PostgreSQL, {args.rows} products, Django {get_version()}; {iterations} iterations of "
          f"each side, alternated (DEBUG={settings.DEBUG})")
    print(f"{'':22}{'node median':>12}{'raw median':>12}{'ratio':>8}{'node p95':>11}{'raw p95':>10}   target")
    for name, (node, raw) in scenarios().items():
        timer = Timer(node, raw)
        timer.run(iterations, max(3, iterations // 10))
        node_med = statistics.median(timer.node_ns) / 1000
        raw_med = statistics.median(timer.raw_ns) / 1000
        ratio = node_med / raw_med
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"{name:22}{node_med:10.0f}us{raw_med:10.0f}us{ratio:7.2f}x"
              f"{p95(timer.node_ns) / 1000:9.0f}us{p95(timer.raw_ns) / 1000:8.0f}us   <= {TARGET}x {verdict}")


if __name__ == "__main__":
    main()
