#!/usr/bin/env python
"""What a model-change trigger costs the writes it watches (PostgreSQL, CeleryRuntime eager).

Sides run alternately in one process (the order rotates each round), each in its own transaction
(commit included), on an emptied shop_product table (not timed). Printed: median seconds and
ratios. No target: these are information rows for docs/triggers.md.

  bulk     ProductBulkCreateNode of N rows, no trigger (COPY)
           vs the same with a "created" trigger (COPY into a staging table, INSERT ... RETURNING,
              one run submitted and, eagerly, executed: a one-node Count workflow)
           vs Django's Product.objects.bulk_create(batch_size=1000) of instances (no trigger)
  upsert   ProductBulkUpsertNode of N rows on sku, half of them existing (seeded untimed), no trigger
              (COPY, one INSERT ... ON CONFLICT counting in SQL)
           vs the same with an "updated" trigger (the statement returns every key and flag; one run
              submitted and executed eagerly)
  save     Product.objects.create() x 200 with no trigger
           vs with an "updated" trigger on Product (the signal runs; nothing fires on create)

    .venv/bin/python benchmarks/triggers.py                  # 20k rows, 5 rounds
    .venv/bin/python benchmarks/triggers.py --rows 100000 --rounds 3

PostgreSQL from --url (default $DATAFLOW_TRIGGER_BENCH_URL or postgres://root@127.0.0.1:5432/
dataflow_trigger_bench; created and migrated when missing; the shop tables are emptied).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import setup_django

DEFAULT_URL = os.environ.get(
    "DATAFLOW_TRIGGER_BENCH_URL", "postgres://root@127.0.0.1:5432/dataflow_trigger_bench"
)


def timed(call: Callable[[], Any], reset: Callable[[], Any]) -> float:
    """Seconds one call takes, in its own transaction, after an untimed reset."""
    from django.db import transaction

    reset()
    start = time.perf_counter()
    with transaction.atomic():
        call()
    return time.perf_counter() - start


def compare(sides: dict[str, Callable[[], Any]], reset: Callable[[], Any], rounds: int) -> dict[str, float]:
    """Median seconds per side, the sides alternating (rotated each round) after one warm-up."""
    names = list(sides)
    for name in names:
        timed(sides[name], reset)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            times[name].append(timed(sides[name], reset))
    return {name: statistics.median(values) for name, values in times.items()}


def build_load(builder_class: Any, rows: list[dict[str, Any]]) -> Any:
    """A one-node workflow: ProductBulkCreateNode of these rows."""
    builder = builder_class()
    builder.add_node("ProductBulkCreateNode", "load", {"data": rows})
    return builder.build()


def main() -> None:
    """Parse arguments, set up, compare, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    setup_django("postgres", args.url)

    from django.conf import settings

    import django_dataflow
    from django_dataflow import LocalRuntime, WorkflowBuilder
    from django_dataflow.models import WorkflowDefinition, WorkflowRun
    from shop.models import Product

    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    WorkflowRun.objects.all().delete()
    WorkflowDefinition.objects.filter(name="bench-audit").delete()
    count = WorkflowBuilder()
    count.add_node("ProductCountNode", "count", {})
    WorkflowDefinition.objects.create(name="bench-audit", workflow=count.build().to_dict())

    rows = [
        {"name": f"Item {i}", "sku": f"SKU-{i}", "price": Decimal("9.99"), "stock": i % 50}
        for i in range(args.rows)
    ]
    load = build_load(WorkflowBuilder, rows)

    def reset() -> None:
        Product.objects.all()._raw_delete("default")
        WorkflowRun.objects.all()._raw_delete("default")

    trigger = django_dataflow.on_commit_of(Product, "created", definition="bench-audit")
    trigger.disconnect()  # connected receivers stay; the trigger list decides

    def with_trigger() -> None:
        from django_dataflow.triggers import model_events

        model_events._TRIGGERS.setdefault((Product, "created"), []).append(trigger)
        try:
            LocalRuntime().execute(load)
        finally:
            trigger.disconnect()

    bulk = compare(
        {
            "node, no trigger (COPY)": lambda: LocalRuntime().execute(load),
            "node, created trigger": with_trigger,
            "Django bulk_create": lambda: Product.objects.bulk_create(
                [Product(**r) for r in rows], batch_size=1000
            ),
        },
        reset, args.rounds,
    )
    base = bulk["Django bulk_create"]
    print(f"bulk: {args.rows} rows, {args.rounds} rounds (median seconds; ratio = Django's time / side's)")
    for name, seconds in bulk.items():
        print(f"  {name:<28} {seconds:8.3f} s   {base / seconds:5.2f}x Django's speed")

    half = build_load(WorkflowBuilder, rows[: args.rows // 2])
    upsert_builder = WorkflowBuilder()
    upsert_builder.add_node("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})
    upsert_load = upsert_builder.build()

    def seeded() -> None:
        reset()
        LocalRuntime().execute(half)

    watching = django_dataflow.on_commit_of(Product, "updated", definition="bench-audit")
    watching.disconnect()

    def upsert_watched() -> None:
        from django_dataflow.triggers import model_events

        model_events._TRIGGERS.setdefault((Product, "updated"), []).append(watching)
        try:
            LocalRuntime().execute(upsert_load)
        finally:
            watching.disconnect()

    upsert = compare(
        {"no trigger": lambda: LocalRuntime().execute(upsert_load), "updated trigger": upsert_watched},
        seeded, args.rounds,
    )
    ratio = upsert["updated trigger"] / upsert["no trigger"]
    print(f"upsert: {args.rows} rows, half existing (median seconds): no trigger "
          f"{upsert['no trigger']:.3f} s, with an 'updated' trigger {upsert['updated trigger']:.3f} s "
          f"({ratio:.2f}x the time)")

    def creates() -> None:
        for i in range(200):
            Product.objects.create(name="x", sku=f"S-{i}", price=Decimal("1.00"))

    from django.db.models.signals import post_save

    from django_dataflow.triggers import model_events

    uid = f"django_dataflow.triggers.{Product._meta.label}.save"
    updated = django_dataflow.on_commit_of(Product, "updated", definition="bench-audit")

    def creates_unwatched() -> None:
        post_save.disconnect(sender=Product, dispatch_uid=uid)  # as in a project without triggers
        try:
            creates()
        finally:
            post_save.connect(model_events._saved, sender=Product, dispatch_uid=uid, weak=False)

    save = compare({"no trigger": creates_unwatched, "updated trigger": creates}, reset, args.rounds)
    updated.disconnect()
    ratio = save["updated trigger"] / save["no trigger"]
    print(f"save: 200 x create() (median seconds): no trigger {save['no trigger']:.4f} s, "
          f"with an 'updated' trigger {save['updated trigger']:.4f} s ({ratio:.2f}x the time)")


if __name__ == "__main__":
    main()
