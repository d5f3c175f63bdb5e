#!/usr/bin/env python
"""The HTTP API's cost: POST workflows/<name>/runs?wait=1 of a one-node definition, against the
same workflow on LocalRuntime and a raw ORM insert, alternated in one loop after a warm-up.

  api    Django's test Client (the full middleware stack, URL resolving, bearer-token lookup)
         POSTs {"inputs": {...}} to /dataflow/workflows/bench-create/runs?wait=1; CeleryRuntime
         runs eagerly (no broker), recording the WorkflowRun row first, as the API always does
  local  LocalRuntime().execute(definition.build(), inputs, user=user): no HTTP, no run record
  raw    with transaction.atomic(): Product.objects.create(...)

Printed: median and p95 in microseconds of each side, and the ratios of the medians (api/local,
api/raw, local/raw). No target: the figures are for information (docs/api.md quotes them).

    .venv/bin/python benchmarks/api.py               # PostgreSQL (DATABASE_URL or the default), 500 rounds
    .venv/bin/python benchmarks/api.py --sqlite      # a fresh SQLite file
    .venv/bin/python benchmarks/api.py --quick       # 60 rounds, a smoke run
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import DEFAULT_URL, median_us, p95, setup_django


def sides() -> dict[str, Callable[[], Any]]:
    """name -> one call of that side; every call inserts a product with a fresh sku."""
    from django.contrib.auth.models import Permission, User
    from django.db import transaction
    from django.test import Client

    from django_dataflow import LocalRuntime
    from django_dataflow.models import ApiToken, WorkflowDefinition, WorkflowRun
    from shop.models import Product

    WorkflowRun.objects.all().delete()
    User.objects.filter(username="bench-api").delete()
    user = User.objects.create_user("bench-api")
    user.user_permissions.add(Permission.objects.get(codename="add_product"))
    user = User.objects.get(pk=user.pk)
    WorkflowDefinition.objects.filter(name="bench-create").delete()
    definition = WorkflowDefinition.objects.create(
        name="bench-create",
        workflow={"nodes": [{"id": "p", "type": "ProductCreateNode",
                             "params": {"name": "{{name}}", "sku": "{{sku}}", "price": "19.99"}}]},
    )
    raw_token = ApiToken.issue(user, "bench")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    workflow = definition.build()
    runtime = LocalRuntime()
    skus = (f"b-{i}" for i in itertools.count())

    def api() -> None:
        body = json.dumps({"inputs": {"name": "Lamp", "sku": next(skus)}})
        response = client.post("/dataflow/workflows/bench-create/runs?wait=1", body,
                               content_type="application/json")
        if response.status_code != 200 or response.json()["status"] != "succeeded":
            raise SystemExit(f"API run failed: {response.status_code} {response.content[:500]!r}")

    def local() -> None:
        runtime.execute(workflow, {"name": "Lamp", "sku": next(skus)}, user=user)

    def raw() -> None:
        with transaction.atomic():
            Product.objects.create(name="Lamp", sku=next(skus), price="19.99")

    return {"api": api, "local": local, "raw": raw}


def measure(rounds: int, warmup: int) -> dict[str, list[int]]:
    """Every side once per round, the order rotating each round."""
    calls = sides()
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    gc.collect()
    timings: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            t0 = clock()
            calls[name]()
            timings[name].append(clock() - t0)
    return timings


def report(where: str, timings: dict[str, list[int]]) -> None:
    """Medians, p95s and ratios."""
    print(f"\n{where}: {len(timings['api'])} rounds")
    for name, values in timings.items():
        print(f"  {name:<6} median {median_us(values):9.1f} us   p95 {p95(values) / 1000:9.1f} us")
    med = {name: statistics.median(values) for name, values in timings.items()}
    print(f"  ratios of medians: api/local {med['api'] / med['local']:.2f}x   "
          f"api/raw {med['api'] / med['raw']:.2f}x   local/raw {med['local'] / med['raw']:.2f}x")


def main() -> None:
    """Parse flags, set up the database, measure, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", action="store_true", help="A fresh SQLite file instead of PostgreSQL.")
    parser.add_argument("-n", "--rounds", type=int, default=500, help="Timed rounds (default 500).")
    parser.add_argument("--quick", action="store_true", help="60 rounds, for a smoke run.")
    args = parser.parse_args()
    rounds = 60 if args.quick else args.rounds
    os.environ.pop("REDIS_URL", None)  # eager CeleryRuntime: no broker in this process
    os.environ.pop("CELERY_BROKER_URL", None)
    backend = "sqlite" if args.sqlite else "postgres"
    where = setup_django(backend, os.environ.get("DATABASE_URL", DEFAULT_URL))
    report(f"{backend} ({where})", measure(rounds, warmup=max(10, rounds // 10)))


if __name__ == "__main__":
    main()
