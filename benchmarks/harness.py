"""What every benchmark script shares: database set-up and the alternating timer."""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://root@127.0.0.1:5432/dataflow_bench"
#: Databases other tools use; the benchmark empties tables, so it refuses them.
RESERVED = {"dataflow", "dataflow_h1", "dataflow_h2", "postgres", "template0", "template1"}


def ensure_postgres_database(url: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in RESERVED:
        raise SystemExit(f"refusing database {name!r}: pick a benchmark-only database name")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(backend: str, url: str, *, empty_tables: bool = True) -> str:
    """Point the testproject at the benchmark database, set Django up and migrate."""
    sys.path[:0] = [str(ROOT), str(ROOT / "testproject")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    if backend == "postgres":
        ensure_postgres_database(url)
        os.environ["DATABASE_URL"] = url
        where = urlsplit(url).path.lstrip("/")
    else:
        os.environ.pop("DATABASE_URL", None)
        tmp = tempfile.mkdtemp(prefix="dataflow-bench-")
        os.environ["DATAFLOW_SQLITE_PATH"] = str(Path(tmp) / "bench.sqlite3")
        where = os.environ["DATAFLOW_SQLITE_PATH"]
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    # The testproject runs with DEBUG=True, which logs every query on both sides; measure
    # what production pays.
    settings.DEBUG = False
    call_command("migrate", verbosity=0, interactive=False)
    if empty_tables:
        from shop.models import Order, Product, StockLevel

        Order.objects.all().delete()
        StockLevel.objects.all().delete()
        Product.objects.all().delete()
    return where


def median_us(values: list[int]) -> float:
    """Median of nanosecond timings, in microseconds."""
    return statistics.median(values) / 1000


class Timer:
    """Runs the node side and the raw side alternately and keeps both sides' timings."""

    def __init__(self, node: Callable[[], Any], raw: Callable[[], Any]) -> None:
        self.node, self.raw = node, raw
        self.node_ns: list[int] = []
        self.raw_ns: list[int] = []

    def run(self, iterations: int, warmup: int) -> None:
        """Warm up, then time both sides alternately, swapping which goes first each round."""
        for _ in range(warmup):
            self.node()
            self.raw()
        gc.collect()
        clock = time.perf_counter_ns
        node, raw = self.node, self.raw
        node_ns, raw_ns = self.node_ns, self.raw_ns
        for i in range(iterations):
            if i & 1:
                t0 = clock()
                raw()
                t1 = clock()
                node()
                t2 = clock()
                raw_ns.append(t1 - t0)
                node_ns.append(t2 - t1)
            else:
                t0 = clock()
                node()
                t1 = clock()
                raw()
                t2 = clock()
                node_ns.append(t1 - t0)
                raw_ns.append(t2 - t1)


def p95(values: list[int]) -> float:
    """95th percentile of timings."""
    return statistics.quantiles(values, n=20)[-1]
