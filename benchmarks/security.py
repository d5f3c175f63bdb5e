#!/usr/bin/env python
"""What the security features cost a run: each secured variant against the same workflow without it.

  read user          ProductReadNode by id with user= (permission checks)    vs  user=None
  list user          ProductListNode of 100 rows with user=                   vs  user=None
  list row_filter    the same List, Product limited by a row_filter           vs  user=, no row_filter
  create row_filter  ProductCreateNode, row_filter checked after the insert   vs  user=, no row_filter
  count timeout      ProductCountNode with DATAFLOW["STATEMENT_TIMEOUT_MS"]   vs  no timeout
                     (PostgreSQL: a transaction and one set_config() more)

Both sides alternate in one loop after a warm-up (benchmarks/harness.py); printed: medians, p95 and
the secured/plain ratio. There is no target: the figures are quoted in docs/security.md.

    .venv/bin/python benchmarks/security.py            # PostgreSQL (DATABASE_URL or dataflow_bench)
    .venv/bin/python benchmarks/security.py --sqlite
    .venv/bin/python benchmarks/security.py --quick    # 300 iterations
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import DEFAULT_URL, Timer, p95, setup_django


def scenarios(prefix: str, postgres: bool) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """name -> (secured side, plain side)."""
    from django.conf import settings
    from django.contrib.auth.models import Permission, User
    from django.db.models import Q

    from django_dataflow import LocalRuntime, WorkflowBuilder, conf
    from django_dataflow.registry import get_entry
    from shop.models import Product

    Product.objects.bulk_create(
        [Product(name=f"{prefix}:{i}", sku=f"{prefix}-{i}", price="1.00") for i in range(1000)]
    )
    user = User.objects.create_user(f"bench-{prefix}")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_product", "add_product"]))
    user = User.objects.get(pk=user.pk)
    runtime = LocalRuntime()
    entry = get_entry(Product)

    def workflow(node_type: str, params: dict[str, Any]) -> Any:
        builder = WorkflowBuilder()
        builder.add_node(node_type, "n", params)
        return builder.build()

    read = workflow("ProductReadNode", {"id": Product.objects.filter(sku=f"{prefix}-0").get().pk})
    listing = workflow("ProductListNode", {"limit": 100, "filter": {"name": {"$startswith": f"{prefix}:"}}})
    create = workflow("ProductCreateNode", {"name": f"{prefix}:new", "sku": "{{sku}}", "price": "1"})
    count = workflow("ProductCountNode", {})
    skus = (f"{prefix}-c{i}" for i in itertools.count())

    def mine(u: Any) -> Q:
        return Q(name__startswith=f"{prefix}:")

    def with_filter(run: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            entry.row_filter = mine
            try:
                return run()
            finally:
                entry.row_filter = None

        return call

    def without_filter(run: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            entry.row_filter = None  # the same attribute write as the other side
            return run()

        return call

    base = dict(settings.DATAFLOW)

    def timeout(value: int | None, run: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            settings.DATAFLOW = {**base, "STATEMENT_TIMEOUT_MS": value}
            conf._values.cache_clear()
            return run()

        return call

    cases = {
        "read user": (lambda: runtime.execute(read, user=user), lambda: runtime.execute(read)),
        "list user": (lambda: runtime.execute(listing, user=user), lambda: runtime.execute(listing)),
        "list row_filter": (
            with_filter(lambda: runtime.execute(listing, user=user)),
            without_filter(lambda: runtime.execute(listing, user=user)),
        ),
        "create row_filter": (
            with_filter(lambda: runtime.execute(create, {"sku": next(skus)}, user=user)),
            without_filter(lambda: runtime.execute(create, {"sku": next(skus)}, user=user)),
        ),
    }
    if postgres:
        cases["count timeout"] = (timeout(5000, lambda: runtime.execute(count)),
                                  timeout(None, lambda: runtime.execute(count)))
    assert len(with_filter(lambda: runtime.execute(listing, user=user))()[0]["n"]["records"]) == 100
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--quick", action="store_true", help="300 iterations (smoke test)")
    parser.add_argument("-n", "--iterations", type=int, default=None, help="timed iterations (default 2000)")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", DEFAULT_URL),
                        help=f"PostgreSQL URL (default: $DATABASE_URL or {DEFAULT_URL})")
    args = parser.parse_args()
    iterations = args.iterations or (300 if args.quick else 2000)
    warmup = min(200, max(20, iterations // 10))
    backend = "sqlite" if args.sqlite else "postgres"
    where = setup_django(backend, args.url)
    try:
        from django import get_version

        print(f"{backend} ({where}), Django {get_version()}, python {sys.version.split()[0]}; "
              f"{iterations} iterations of each side after {warmup} warm-up, alternated")
        print(f"{'':19}{'secured':>10}{'plain':>10}{'ratio':>8}{'secured p95':>13}{'plain p95':>11}")
        for name, (secured, plain) in scenarios(f"b{os.getpid()}", backend == "postgres").items():
            timer = Timer(secured, plain)
            timer.run(iterations, warmup)
            node, raw = statistics.median(timer.node_ns) / 1000, statistics.median(timer.raw_ns) / 1000
            print(f"{name:19}{node:8.0f}us{raw:8.0f}us{node / raw:7.2f}x"
                  f"{p95(timer.node_ns) / 1000:11.0f}us{p95(timer.raw_ns) / 1000:9.0f}us")
    finally:
        if backend == "sqlite":
            from django.db import connections

            connections.close_all()
            shutil.rmtree(Path(where).parent, ignore_errors=True)


if __name__ == "__main__":
    main()
