#!/usr/bin/env python
"""Per-run overhead of running a workflow in a tenant's schema (django-tenants) vs without tenant.

The same pre-built workflows run on LocalRuntime with testproject.settings_tenants (the
django_tenants.postgresql_backend engine, TENANT_LIMIT_SET_CALLS on), alternated in one loop
after a warm-up:

  write  one ProbeCreateNode (probe is shared and per tenant, so the same table exists in both)
  read   one ProbeCountNode (read-only: no transaction)

  tenant       LocalRuntime().execute(wf, tenant="bench") from the public schema, then the
               switch back: one statement checks the tenant and sets its search_path, the run,
               then SET search_path back to public (what a worker does after every task)
  no tenant    LocalRuntime().execute(wf) in the public schema

Printed: medians and p95 in microseconds, the tenant-minus-no-tenant difference of the medians in
milliseconds (target: under 1 ms per run) and the ratios, plus the raw ORM create in the public
schema and one SELECT 1 round trip for scale (the overhead is two round trips).

    .venv/bin/python benchmarks/tenants.py            # 2000 iterations
    .venv/bin/python benchmarks/tenants.py --quick    # 300

The database is DATABASE_URL (default postgres://root@127.0.0.1:5432/dataflow_bench_tenants),
created when missing; migrate_schemas and the tenant 'bench' are set up on first use.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Timer, ensure_postgres_database, median_us, p95  # noqa: E402

DEFAULT_URL = "postgres://root@127.0.0.1:5432/dataflow_bench_tenants"
TENANT = "bench"
TARGET_MS = 1.0


def setup(url: str) -> None:
    """Settings with django-tenants, the schemas migrated and the benchmark tenant present."""
    ensure_postgres_database(url)
    sys.path[:0] = [str(ROOT), str(ROOT / "testproject")]
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings_tenants"
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    call_command("migrate_schemas", verbosity=0, interactive=False)
    from customers.models import Client

    if not Client.objects.filter(schema_name=TENANT).exists():
        Client(schema_name=TENANT, name="Bench").save(verbosity=0)
    from django_tenants.utils import schema_context

    from probe.models import Probe

    Probe.objects.all().delete()
    with schema_context(TENANT):
        Probe.objects.all().delete()


def compare(name: str, side_a: tuple[str, object], side_b: tuple[str, object], iterations: int) -> float:
    """Alternate two callables; print both medians and p95s, the difference and the ratio."""
    timer = Timer(side_a[1], side_b[1])  # type: ignore[arg-type]
    timer.run(iterations, warmup=min(200, iterations // 5))
    a_med, b_med = median_us(timer.node_ns), median_us(timer.raw_ns)
    diff_ms = (a_med - b_med) / 1000
    paired = statistics.median(a - b for a, b in zip(timer.node_ns, timer.raw_ns, strict=True)) / 1e6
    print(
        f"{name:7}{side_a[0]:>10} {a_med:8.0f}us (p95 {p95(timer.node_ns) / 1000:6.0f})  "
        f"{side_b[0]:>10} {b_med:8.0f}us (p95 {p95(timer.raw_ns) / 1000:6.0f})  "
        f"diff {diff_ms:+.3f} ms (paired {paired:+.3f})  ratio {a_med / b_med:.2f}x"
    )
    return diff_ms


def main() -> None:
    """Parse arguments, set up, run the comparisons."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="iterations per comparison")
    parser.add_argument("--quick", action="store_true", help="300 iterations (a smoke run)")
    args = parser.parse_args()
    iterations = 300 if args.quick else args.n
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    setup(url)
    from django import get_version
    from django.db import connection, transaction

    from django_dataflow import LocalRuntime, WorkflowBuilder, tenancy
    from probe.models import Probe

    def workflow(node: str, params: dict[str, object]) -> object:
        builder = WorkflowBuilder()
        builder.add_node(node, "n", params)
        return builder.build()

    write = workflow("ProbeCreateNode", {"label": "x"})
    read = workflow("ProbeCountNode", {})
    runtime = LocalRuntime()

    def tenant_run(wf: object) -> None:
        runtime.execute(wf, tenant=TENANT)
        tenancy.sync_search_path()  # the switch back to public is paid here, not by the next run

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    def raw_create() -> None:
        with transaction.atomic():
            Probe.objects.create(label="x")

    print(f"PostgreSQL ({urlsplit(url).path.lstrip('/')}), Django {get_version()}, django-tenants, "
          f"{iterations} iterations, medians")
    worst = 0.0
    for name, wf in (("write", write), ("read", read)):
        worst = max(worst, compare(
            name,
            ("tenant", lambda wf=wf: tenant_run(wf)),
            ("no tenant", lambda wf=wf: runtime.execute(wf)),
            iterations,
        ))
    compare("write", ("no tenant", lambda: runtime.execute(write)), ("raw ORM", raw_create), iterations)
    compare("trip", ("SELECT 1", select_one), ("SELECT 1", select_one), iterations)
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"tenant switching overhead per run: worst {worst:.3f} ms; target < {TARGET_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
