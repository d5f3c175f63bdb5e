#!/usr/bin/env python
"""Bulk nodes on PostgreSQL against raw psycopg COPY and Django's bulk_create / bulk_update.

Every comparison runs its sides alternately in one process (the order swaps each round), each
side in its own transaction (commit included), on an emptied or reset shop_product table (the reset
is not timed). Printed: median seconds, rows/s and the ratios against the targets.

  create   ProductBulkCreateNode (dicts of Python values, LocalRuntime)   target
           vs raw psycopg COPY (binary, as the node) of the same tuples    >= 0.75x of its speed
           vs Product.objects.bulk_create(batch_size=1000) of instances    >= 3x its speed
  upsert   ProductBulkUpsertNode, half the rows new, half existing        >= 2.5x the speed of
           vs bulk_create(update_conflicts=True, batch_size=1000)          Django's
           (info: raw COPY into a temp table + INSERT ... ON CONFLICT)
  update   ProductBulkUpdateNode with data (id, price, stock)             >= 25x the speed of
           vs bulk_update(objs, ["price", "stock"], batch_size=1000)       Django's
  (info)   django-pgbulk's copy() and upsert() of instances, when installed
  memory   peak RSS of a fresh process loading N generated rows through BulkCreate (< 300 MB at 5M)

    .venv/bin/python benchmarks/bulk.py                       # 100k and 1M rows, memory up to 5M
    .venv/bin/python benchmarks/bulk.py --rows 100000 --rounds 5 --no-memory
    .venv/bin/python benchmarks/bulk.py --quick               # 20k rows, 2 rounds, memory at 100k
    .venv/bin/python benchmarks/bulk.py --memory-only --memory-rows 5000000

PostgreSQL from --url (default $DATAFLOW_BULK_BENCH_URL or postgres://root@127.0.0.1:5432/
dataflow_bulk_bench; created and migrated when missing; the shop tables are emptied).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import setup_django

DEFAULT_URL = os.environ.get(
    "DATAFLOW_BULK_BENCH_URL", "postgres://root@127.0.0.1:5432/dataflow_bulk_bench"
)
COLUMNS = ["name", "sku", "price", "stock", "active", "description", "created_at", "updated_at"]
#: django-pgbulk's upsert sends every row as parameters of one statement: minutes at 1M rows.
PGBULK_MAX_ROWS = 100_000
UPDATE_COLUMNS = ["name", "price", "stock", "active", "description", "updated_at"]


def row(i: int, tag: str) -> dict[str, Any]:
    """One product as an ETL generator would yield it: Python values, some NULLs."""
    return {
        "name": f"Item {i}",
        "sku": f"{tag}-{i}",
        "price": Decimal(i % 10_000) / 100,
        "stock": i % 1000,
        "active": i % 3 != 0,
        "description": None if i % 4 == 0 else f"description of item {i}",
    }


def rows(count: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    """count product rows."""
    return [row(i, tag) for i in range(start, start + count)]


def as_tuples(data: list[dict[str, Any]], now: dt.datetime) -> list[tuple[Any, ...]]:
    """The same rows as the tuples a hand-written COPY would send (auto_now columns filled)."""
    return [
        (r["name"], r["sku"], r["price"], r["stock"], r["active"], r["description"], now, now) for r in data
    ]


# --------------------------------------------------------------------------- the sides


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE shop_product RESTART IDENTITY CASCADE")


#: The column types for a binary COPY, as the node derives them from the fields.
TYPES = ["varchar", "varchar", "numeric", "int4", "bool", "text", "timestamptz", "timestamptz"]


def raw_copy(table: str, tuples: list[tuple[Any, ...]], *, binary: bool = True) -> None:
    """psycopg's COPY on the raw connection, no Django in between (binary, like the node, or text)."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN" + (" WITH (FORMAT BINARY)" if binary else "")
    with raw.transaction(), raw.cursor() as cursor, cursor.copy(sql) as copy:
        if binary:
            copy.set_types(TYPES)
        for values in tuples:
            copy.write_row(values)


def node_runner(node_type: str, params: dict[str, Any]) -> Callable[[Any], Any]:
    from django_dataflow import LocalRuntime, WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node(node_type, "bulk", {**params, "data": "{{data}}"})
    workflow = builder.build()
    runtime = LocalRuntime()

    def run(data: Any) -> Any:
        return runtime.execute(workflow, {"data": data})[0]["bulk"]

    return run


def reset_existing(half: list[tuple[Any, ...]]) -> None:
    truncate()
    raw_copy("shop_product", half)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shop_product")


def measure(sides: dict[str, Callable[[], Any]], rounds: int, reset: Callable[[], None]) -> dict[str, float]:
    """Median seconds per side; sides alternate and the first side rotates every round."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names[index % len(names):] + names[: index % len(names)]
        for name in order:
            reset()
            gc.collect()
            started = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, count: int, medians: dict[str, float]) -> None:
    print(f"\n{title}, {count:,} rows")
    for name, seconds in medians.items():
        print(f"  {name:44}{seconds:9.3f} s{count / seconds:12,.0f} rows/s")


def ratio_line(label: str, value: float, target: float) -> bool:
    ok = value >= target
    print(f"  {label:60}{value:6.2f}x   target >= {target}x {'ok' if ok else 'MISSED'}")
    return ok


def bench_create(count: int, rounds: int) -> None:
    from django.utils import timezone

    from shop.models import Product

    data = rows(count, "c")
    tuples = as_tuples(data, timezone.now())
    node = node_runner("ProductBulkCreateNode", {})
    sides: dict[str, Callable[[], Any]] = {
        "BulkCreate node (COPY)": lambda: node(data),
        "raw psycopg COPY of the tuples": lambda: raw_copy("shop_product", tuples),
        "(info) raw psycopg COPY, text format": lambda: raw_copy("shop_product", tuples, binary=False),
        "bulk_create(batch_size=1000)": lambda: _bulk_create(Product, data),
    }
    pgbulk = _pgbulk() if count <= PGBULK_MAX_ROWS else None
    if pgbulk is not None:
        sides["(info) pgbulk.copy of instances"] = lambda: _pgbulk_copy(pgbulk, Product, data)
    medians = measure(sides, rounds, truncate)
    report("BulkCreate", count, medians)
    node_s = medians["BulkCreate node (COPY)"]
    ratio_line("node speed / raw COPY speed", medians["raw psycopg COPY of the tuples"] / node_s, 0.75)
    ratio_line("node speed / bulk_create speed", medians["bulk_create(batch_size=1000)"] / node_s, 3.0)


def _bulk_create(model: Any, data: list[dict[str, Any]]) -> None:
    from django.db import transaction

    with transaction.atomic():
        model.objects.bulk_create([model(**r) for r in data], batch_size=1000)


def _pgbulk() -> Any:
    try:
        import pgbulk
    except ImportError:
        return None
    return pgbulk


def _pgbulk_copy(pgbulk: Any, model: Any, data: list[dict[str, Any]]) -> None:
    from django.db import transaction

    with transaction.atomic():
        pgbulk.copy(model, [model(**r) for r in data], exclude=["id"])


def bench_upsert(count: int, rounds: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from shop.models import Product

    half = count // 2
    now = timezone.now()
    existing = as_tuples(rows(half, "u"), now)
    data = [{**r, "name": r["name"] + " v2"} for r in rows(count, "u")]  # rows 0..half-1 exist
    node = node_runner("ProductBulkUpsertNode", {"conflict_on": ["sku"]})
    fields = ["name", "price", "stock", "active", "description", "updated_at"]

    def django_upsert() -> None:
        with transaction.atomic():
            Product.objects.bulk_create(
                [Product(**r) for r in data], batch_size=1000, update_conflicts=True,
                unique_fields=["sku"], update_fields=fields,
            )

    tuples = as_tuples(data, now)

    def raw_upsert() -> None:
        connection.ensure_connection()
        raw = connection.connection
        cols = ", ".join(COLUMNS)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATE_COLUMNS)
        with raw.transaction(), raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE bench_stage ON COMMIT DROP AS "
                f"SELECT {cols} FROM shop_product WITH NO DATA"
            )
            with cursor.copy(f"COPY bench_stage ({cols}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(TYPES)
                for values in tuples:
                    copy.write_row(values)
            cursor.execute(
                f"INSERT INTO shop_product ({cols}) SELECT {cols} FROM bench_stage "
                f"ON CONFLICT (sku) DO UPDATE SET {sets}"
            )

    checked: list[Any] = []

    def run_node() -> None:
        checked.append(node(data))

    sides: dict[str, Callable[[], Any]] = {
        "BulkUpsert node (COPY + ON CONFLICT)": run_node,
        "bulk_create(update_conflicts=True)": django_upsert,
        "(info) raw COPY temp + INSERT ON CONFLICT": raw_upsert,
    }
    pgbulk = _pgbulk() if count <= PGBULK_MAX_ROWS else None
    if pgbulk is not None:
        def pgbulk_upsert() -> None:
            with transaction.atomic():
                pgbulk.upsert(Product, [Product(**r) for r in data], ["sku"], fields)

        sides["(info) pgbulk.upsert of instances"] = pgbulk_upsert
    medians = measure(sides, rounds, lambda: reset_existing(existing))
    assert checked[-1] == {"created": count - half, "updated": half}, checked[-1]
    report("BulkUpsert, half new and half existing", count, medians)
    node_s = medians["BulkUpsert node (COPY + ON CONFLICT)"]
    ratio_line("node speed / bulk_create(update_conflicts) speed",
               medians["bulk_create(update_conflicts=True)"] / node_s, 2.5)
    django_s = medians["bulk_create(update_conflicts=True)"]
    raw_ratio = django_s / medians["(info) raw COPY temp + INSERT ON CONFLICT"]
    print(f"  (info) raw COPY + ON CONFLICT speed / bulk_create(update_conflicts) speed: {raw_ratio:.2f}x")


def bench_update(count: int, rounds: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from shop.models import Product

    existing = as_tuples(rows(count, "p"), timezone.now())
    ids = list(range(1, count + 1))  # RESTART IDENTITY: the reset gives ids 1..count
    data = [{"id": pk, "price": Decimal(pk % 997) / 10, "stock": pk % 500} for pk in ids]
    node = node_runner("ProductBulkUpdateNode", {})
    checked: list[Any] = []

    def django_update() -> None:
        with transaction.atomic():
            objs = [Product(**r) for r in data]
            Product.objects.bulk_update(objs, ["price", "stock"], batch_size=1000)

    medians = measure(
        {
            "BulkUpdate node (COPY + UPDATE FROM)": lambda: checked.append(node(data)),
            "bulk_update(batch_size=1000)": django_update,
        },
        rounds,
        lambda: reset_existing(existing),
    )
    assert checked[-1] == {"updated": count}, checked[-1]
    report("BulkUpdate with data (id, price, stock)", count, medians)
    node_s = medians["BulkUpdate node (COPY + UPDATE FROM)"]
    ratio_line("node speed / bulk_update speed", medians["bulk_update(batch_size=1000)"] / node_s, 25.0)


# --------------------------------------------------------------------------- memory


def generated(count: int) -> Iterator[dict[str, Any]]:
    """Rows produced one at a time, as a file reader would."""
    for i in range(count):
        yield row(i, "m")


def memory_child(count: int, url: str) -> None:
    """In a fresh process: RSS before, peak RSS after streaming count generated rows."""
    setup_django("postgres", url, empty_tables=False)
    from django.conf import settings
    from django.test import override_settings

    # Loads past the default bound of 1M rows per bulk node are opted into, as a user would.
    override_settings(DATAFLOW={**settings.DATAFLOW, "MAX_BULK_ROWS": max(count, 1_000_000)}).enable()
    truncate()
    node = node_runner("ProductBulkCreateNode", {"batch_size": 10_000})
    node(iter([row(0, "warm")]))  # imports and node classes, before the baseline
    truncate()
    gc.collect()
    before = _status_mb("VmRSS:")
    started = time.perf_counter()
    result = node(generated(count))
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM:")
    truncate()
    print(json.dumps({"rows": result["created"], "before_mb": before, "peak_mb": peak, "seconds": seconds}))


def _status_mb(key: str) -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of the
    # benchmark (which holds 1M rows) would report the parent's peak as its own.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(counts: list[int], url: str) -> None:
    print("\nPeak memory of BulkCreate from a generator (fresh process each, batch_size 10000)")
    print(f"  {'rows':>10}{'RSS before':>12}{'peak RSS':>10}{'rows/s':>12}")
    for count in counts:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count), "--url", url],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        figures = json.loads(out)
        assert figures["rows"] == count, figures
        print(f"  {count:>10,}{figures['before_mb']:10.0f}MB{figures['peak_mb']:8.0f}MB"
              f"{count / figures['seconds']:12,.0f}   target < 300 MB at 5M: "
              f"{'ok' if figures['peak_mb'] < 300 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, nargs="+", default=None,
                        help="row counts (default 100000 1000000)")
    parser.add_argument("--update-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per side (default 5, 3 at 1M)")
    parser.add_argument("--quick", action="store_true", help="20k rows, 2 rounds, memory at 100k")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--memory-rows", type=int, nargs="+", default=None)
    parser.add_argument("--only", choices=("create", "upsert", "update"), nargs="+", default=None)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.url)
        return
    counts = args.rows or ([20_000] if args.quick else [100_000, 1_000_000])
    memory_rows = args.memory_rows or ([100_000] if args.quick else [100_000, 1_000_000, 5_000_000])
    if not args.memory_only:
        where = setup_django("postgres", args.url)
        from django import get_version

        print(f"PostgreSQL ({where}), Django {get_version()}, python {sys.version.split()[0]}")
        only = set(args.only or ("create", "upsert", "update"))
        for count in counts:
            rounds = args.rounds or (2 if args.quick else (3 if count >= 1_000_000 else 5))
            if "create" in only:
                bench_create(count, rounds)
            if "upsert" in only:
                bench_upsert(count, rounds)
        if "update" in only:
            update_rows = 20_000 if args.quick else args.update_rows
            bench_update(update_rows, args.rounds or (2 if args.quick else 5))
        truncate()
    if not args.no_memory:
        bench_memory(memory_rows, args.url)


if __name__ == "__main__":
    main()
