#!/usr/bin/env python
"""Per-operation cost of running a workflow on LocalRuntime against the raw Django ORM.

Three comparisons, each node side and raw side alternated in one loop after a warm-up:

  create        a pre-built one-node ProductCreateNode workflow, LocalRuntime().execute(wf, inputs)
                vs  with transaction.atomic(): Product.objects.create(...)
  read          a pre-built ProductReadNode workflow by id (read-only: no transaction)
                vs  Product.objects.get(pk=...)
  build+create  WorkflowBuilder().add_node(...).build() + execute, every iteration
                vs  the same raw create
  create novalid  as create with "validate": false (no full_clean(), which raw create skips)

Printed per comparison: median and p95 in microseconds of each side and node/raw ratios.
Targets: median ratio <= 1.5x for create and read (the other two are for information).

The database is PostgreSQL from DATABASE_URL (default postgres://root@127.0.0.1:5432/dataflow_bench,
created and migrated when missing; the shop tables are emptied first), or with --sqlite a fresh
SQLite file in a temporary directory with the testproject's WAL options.

    .venv/bin/python benchmarks/executor.py               # PostgreSQL, 2000 iterations
    .venv/bin/python benchmarks/executor.py --sqlite      # SQLite
    .venv/bin/python benchmarks/executor.py --both        # PostgreSQL, then SQLite
    .venv/bin/python benchmarks/executor.py --quick       # 300 iterations, a smoke test
    .venv/bin/python benchmarks/executor.py -n 10000 --profile create
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import DEFAULT_URL, Timer, p95, setup_django  # noqa: E402

TARGET = 1.5
TARGETED = ("create", "read")
PRICE = "19.99"


def scenarios(prefix: str) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """name -> (node side, raw side); every create uses a fresh sku."""
    from django.db import transaction

    from django_dataflow import LocalRuntime, WorkflowBuilder
    from shop.models import Product

    runtime = LocalRuntime()
    node_sku = (f"{prefix}n-{i}" for i in itertools.count())
    raw_sku = (f"{prefix}r-{i}" for i in itertools.count())
    built_sku = (f"{prefix}b-{i}" for i in itertools.count())
    build_raw_sku = (f"{prefix}br-{i}" for i in itertools.count())
    quick_sku = (f"{prefix}q-{i}" for i in itertools.count())
    quick_raw_sku = (f"{prefix}qr-{i}" for i in itertools.count())

    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "create", {"name": "Lamp", "price": PRICE, "sku": "{{sku}}"})
    create_wf = builder.build()

    def node_create() -> Any:
        return runtime.execute(create_wf, {"sku": next(node_sku)})

    builder = WorkflowBuilder()
    params = {"name": "Lamp", "price": PRICE, "sku": "{{sku}}", "validate": False}
    builder.add_node("ProductCreateNode", "create", params)
    unvalidated_wf = builder.build()

    def node_create_unvalidated() -> Any:
        return runtime.execute(unvalidated_wf, {"sku": next(quick_sku)})

    def raw_create(skus: Any = raw_sku) -> Any:
        with transaction.atomic():
            return Product.objects.create(name="Lamp", price=PRICE, sku=next(skus))

    target = Product.objects.create(name="Read me", price=PRICE, sku=f"{prefix}read")
    builder = WorkflowBuilder()
    builder.add_node("ProductReadNode", "read", {"id": target.pk})
    read_wf = builder.build()
    pk = target.pk

    def node_read() -> Any:
        return runtime.execute(read_wf)

    def raw_read() -> Any:
        return Product.objects.get(pk=pk)

    def node_build_create() -> Any:
        wf = WorkflowBuilder()
        wf.add_node("ProductCreateNode", "create", {"name": "Lamp", "price": PRICE, "sku": next(built_sku)})
        return runtime.execute(wf.build())

    assert node_create()[0]["create"]["sku"].startswith(prefix)
    assert node_read()[0]["read"]["id"] == pk
    return {
        "create": (node_create, raw_create),
        "read": (node_read, raw_read),
        "build+create": (node_build_create, lambda: raw_create(build_raw_sku)),
        # The node validates fields with full_clean() by default; the raw side never does.
        "create novalid": (node_create_unvalidated, lambda: raw_create(quick_raw_sku)),
    }


def profile(node: Callable[[], Any], iterations: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        node()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"django_dataflow", 30)


def run_backend(args: argparse.Namespace) -> None:
    backend = "sqlite" if args.sqlite else "postgres"
    where = setup_django(backend, args.url)
    try:
        compare(args, backend, where)
    finally:
        if backend == "sqlite":
            from django.db import connections

            connections.close_all()
            shutil.rmtree(Path(where).parent, ignore_errors=True)


def compare(args: argparse.Namespace, backend: str, where: str) -> None:
    from django import get_version

    cases = scenarios(prefix=f"{os.getpid()}-")
    if args.profile:
        profile(cases[args.profile][0], args.iterations)
        return
    print(f"{backend} ({where}), Django {get_version()}, python {sys.version.split()[0]}; "
          f"{args.iterations} iterations of each side after {args.warmup} warm-up, alternated")
    print(f"{'':15}{'node median':>12}{'raw median':>12}{'ratio':>8}"
          f"{'node p95':>11}{'raw p95':>10}{'ratio':>7}   target")
    missed = False
    for name, (node, raw) in cases.items():
        timer = Timer(node, raw)
        timer.run(args.iterations, args.warmup)
        node_med = statistics.median(timer.node_ns) / 1000
        raw_med = statistics.median(timer.raw_ns) / 1000
        node_p95, raw_p95 = p95(timer.node_ns) / 1000, p95(timer.raw_ns) / 1000
        ratio = node_med / raw_med
        if name not in TARGETED:
            verdict = "(info)"
        else:
            verdict = f"<= {TARGET}x " + ("ok" if ratio <= TARGET else "MISSED")
            missed |= ratio > TARGET
        print(f"{name:15}{node_med:10.0f}us{raw_med:10.0f}us{ratio:7.2f}x"
              f"{node_p95:9.0f}us{raw_p95:8.0f}us{node_p95 / raw_p95:6.2f}x   {verdict}")
    if missed:
        print("a ratio missed its target; profile the node side with --profile create|read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--both", action="store_true", help="PostgreSQL, then SQLite")
    parser.add_argument("--quick", action="store_true", help="300 iterations (smoke test)")
    parser.add_argument("-n", "--iterations", type=int, default=None,
                        help="timed iterations of each side per comparison (default 2000)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations first")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", DEFAULT_URL),
                        help=f"PostgreSQL URL (default: $DATABASE_URL or {DEFAULT_URL})")
    parser.add_argument("--profile", choices=("create", "read", "build+create", "create novalid"),
                        help="cProfile the node side of one comparison instead of timing")
    args = parser.parse_args()
    if args.iterations is None:
        args.iterations = 300 if args.quick else 2000
    if args.warmup is None:
        args.warmup = min(200, max(20, args.iterations // 10))
    if args.both:
        base = [a for a in sys.argv[1:] if a != "--both"]
        for extra in ([], ["--sqlite"]):
            subprocess.run([sys.executable, __file__, *base, *extra], check=True)
            print()
        return
    run_backend(args)


if __name__ == "__main__":
    main()
