#!/usr/bin/env python
"""Round trip of a one-node workflow through CeleryRuntime against a plain Celery task.

Both sides go through one real worker (`celery -A testproject worker`, the testproject's settings:
Redis broker and result backend, CELERY_DB_REUSE_MAX, prefetch 1) and insert one Product row:

  workflow   CeleryRuntime().execute(wf, inputs={"sku": ...}) with a pre-built ProductCreateNode
             workflow ("validate": false, so no full_clean(), like the plain task): submit writes
             the WorkflowRun row and sends the task on commit, the worker claims the run, runs the
             node and marks the run succeeded in the same transaction, wait() reads the result
  plain      shop.create_product.apply_async(...).get(): Product.objects.create(...) in the task

Latency: the two sides alternate (which goes first alternates too) after a warm-up; printed are
p50 and p95 in milliseconds and the workflow/plain ratios (target: p50 ratio <= 1.3).
Throughput: N runs submitted at once, then all awaited, per side, twice, alternating.
"workflow+validate" (full_clean(): one more SELECT for the unique sku) and "plain, acks_late" (the
plain task acknowledged after it ran, as CeleryRuntime's task is) are printed for information.
"durable minimum" is the floor: shop.create_product_recorded, a hand-written task keeping only
CeleryRuntime's guarantees (run row committed before the send, claim committed before the work,
success committed with the data); it is printed against the plain task and against the workflow.

PostgreSQL from --url (default postgres://root@127.0.0.1:5432/dataflow_bench_celery, created and
migrated when missing, shop tables emptied); Redis from --redis (default $REDIS_URL or
redis://127.0.0.1:6379/0); each run uses a queue of its own.

    .venv/bin/python benchmarks/celery_roundtrip.py             # 600 round trips per side
    .venv/bin/python benchmarks/celery_roundtrip.py --quick     # 100, a smoke run
    .venv/bin/python benchmarks/celery_roundtrip.py -n 2000 --concurrency 2 --throughput 1000
    .venv/bin/python benchmarks/celery_roundtrip.py --db-reuse 0  # Celery's default: reconnect per task
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Timer, p95, setup_django

DEFAULT_URL = "postgres://root@127.0.0.1:5432/dataflow_bench_celery"
TARGET = 1.3


def start_worker(
    url: str, redis_url: str, queue: str, concurrency: int, db_reuse: int
) -> tuple[subprocess.Popen[bytes], str]:
    """The worker both sides share, in its own process group."""
    name = f"bench-{uuid.uuid4().hex[:8]}@bench"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "DJANGO_DEBUG": "0",
        "CELERY_DB_REUSE_MAX": str(db_reuse),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "testproject", "worker", "-Q", queue,
        "-c", str(concurrency), "-P", "prefork", "-n", name, "--without-gossip", "--without-mingle",
        "-l", "warning",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    return proc, name


def client_app(redis_url: str) -> Any:
    """This process's Celery app: the testproject's settings, the benchmark's Redis."""
    from celery import Celery

    app = Celery("bench-client", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    return app


def main() -> None:
    """Parse the flags, start the worker, measure, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--iterations", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--throughput", type=int, default=400, help="runs per side per throughput round")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--db-reuse", type=int, default=1000,
        help="the worker's CELERY_DB_REUSE_MAX (0: Celery's default, a new connection per task)",
    )
    parser.add_argument("--quick", action="store_true", help="100 iterations, 100 throughput runs")
    parser.add_argument("--url", default=os.environ.get("DATAFLOW_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.warmup, args.throughput = 100, 20, 100

    where = setup_django("postgres", args.url)
    from django.conf import settings
    from django.test import override_settings

    import django_dataflow.tasks  # noqa: F401  (registers the workflow task with the client app)
    import shop.tasks  # noqa: F401
    from django_dataflow import CeleryRuntime, WorkflowBuilder
    from django_dataflow.models import WorkflowRun

    queue = f"dataflow-bench-{uuid.uuid4().hex[:8]}"
    app = client_app(args.redis)
    override_settings(DATAFLOW={**settings.DATAFLOW, "CELERY_EAGER": False}).enable()
    proc, name = start_worker(args.url, args.redis, queue, args.concurrency, args.db_reuse)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the benchmark worker did not start")

        skus = (f"B-{i}" for i in itertools.count())
        runtime = CeleryRuntime(queue, app=app)
        plain = app.tasks["shop.create_product"]

        def workflow(validate: bool) -> Any:
            builder = WorkflowBuilder()
            params = {"name": "Lamp", "sku": "{{sku}}", "price": "19.99", "validate": validate}
            builder.add_node("ProductCreateNode", "create", params)
            return builder.build()

        fast, validated = workflow(False), workflow(True)

        def run_workflow(wf: Any = fast) -> None:
            runtime.execute(wf, inputs={"sku": next(skus)}, timeout=30)

        def run_plain() -> None:
            plain.apply_async(args=("Lamp", next(skus), "19.99"), queue=queue).get(timeout=30)

        print(f"database: {where}; redis: {args.redis}; worker: prefork x{args.concurrency}, "
              f"CELERY_DB_REUSE_MAX={args.db_reuse or None}; "
              f"{args.iterations} round trips per side after {args.warmup} warm-up")
        print(f"{'':22} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
        late = app.tasks["shop.create_product_acks_late"]

        def run_plain_acks_late() -> None:
            late.apply_async(args=("Lamp", next(skus), "19.99"), queue=queue).get(timeout=30)

        recorded = app.tasks["shop.create_product_recorded"]

        def run_durable_minimum() -> None:
            task_id = str(uuid.uuid4())
            run = WorkflowRun.objects.create(workflow={}, runtime="bench", celery_task_id=task_id)
            recorded.apply_async(
                args=(str(run.run_id), "Lamp", next(skus), "19.99"), queue=queue, task_id=task_id
            ).get(timeout=30)

        rows = [
            ("workflow", run_workflow),
            ("workflow+validate", lambda: run_workflow(validated)),
            ("plain, acks_late", run_plain_acks_late),
            ("durable minimum", run_durable_minimum),
        ]
        for label, side in rows:
            timer = Timer(side, run_plain)
            timer.run(args.iterations, args.warmup)
            node_p50, raw_p50 = _ms(_median(timer.node_ns)), _ms(_median(timer.raw_ns))
            node_p95, raw_p95 = _ms(p95(timer.node_ns)), _ms(p95(timer.raw_ns))
            print(f"{label:22} {node_p50:8.2f} {node_p95:8.2f} {node_p50 / raw_p50:9.2f}x "
                  f"{node_p95 / raw_p95:9.2f}x")
            print(f"{'  plain task':22} {raw_p50:8.2f} {raw_p95:8.2f}")
            if label == "workflow":
                verdict = "meets" if node_p50 / raw_p50 <= TARGET else "misses"
                print(f"  -> p50 ratio {node_p50 / raw_p50:.2f}x {verdict} the {TARGET}x target")

        # The floor: the same guarantees hand-written (run row first, claim, success with the data).
        timer = Timer(run_workflow, run_durable_minimum)
        timer.run(args.iterations, args.warmup)
        node_p50, floor_p50 = _ms(_median(timer.node_ns)), _ms(_median(timer.raw_ns))
        print(f"{'workflow':22} {node_p50:8.2f} {'':8} {node_p50 / floor_p50:9.2f}x")
        print(f"{'  durable minimum':22} {floor_p50:8.2f}")

        rates: dict[str, list[float]] = {"workflow": [], "plain": []}
        for _ in range(2):
            started = time.perf_counter()
            handles = [runtime.submit(fast, inputs={"sku": next(skus)}) for _ in range(args.throughput)]
            for handle in handles:
                handle.wait(timeout=120)
            rates["workflow"].append(args.throughput / (time.perf_counter() - started))
            started = time.perf_counter()
            results = [
                plain.apply_async(args=("Lamp", next(skus), "19.99"), queue=queue)
                for _ in range(args.throughput)
            ]
            for result in results:
                result.get(timeout=120)
            rates["plain"].append(args.throughput / (time.perf_counter() - started))
        best = {side: max(values) for side, values in rates.items()}
        print(f"throughput ({args.throughput} submitted at once, best of 2): workflow "
              f"{best['workflow']:.0f}/s, plain {best['plain']:.0f}/s "
              f"({best['workflow'] / best['plain']:.2f}x)")
    finally:
        proc.send_signal(signal.SIGTERM)  # warm shutdown: to the main process only
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _median(values: list[int]) -> float:
    import statistics

    return statistics.median(values)


def _ms(nanoseconds: float) -> float:
    return nanoseconds / 1e6


if __name__ == "__main__":
    main()
