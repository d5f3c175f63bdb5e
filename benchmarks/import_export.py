#!/usr/bin/env python
"""manage.py dataflow_import / dataflow_export against psycopg COPY and Django's bulk_create.

The sides alternate in one process (the first side rotates each round), each on an emptied
shop_product table (the reset is not timed); printed: median seconds, rows/s and the ratios.

  import   dataflow_import shop.Product FILE.csv (the command as called by call_command)
           vs psycopg COPY of the same file: csv.reader + copy.write_row (a hand-written loader)
           vs COPY ... FROM STDIN (FORMAT csv) fed the file's bytes: the server does all the work
              (the timestamps come from column defaults set for this run, dropped after it)
           vs csv.DictReader + Product(...) + bulk_create(batch_size=1000), streamed in chunks
  export   dataflow_export shop.Product -o FILE.csv
           vs COPY (SELECT ... ORDER BY id) TO STDOUT (FORMAT csv, HEADER) written to a file
           vs values_list().iterator() + csv.writer (what a hand-written ORM export does)

    .venv/bin/python benchmarks/import_export.py                  # 100k rows, 5 rounds
    .venv/bin/python benchmarks/import_export.py --rows 1000000 --rounds 3
    .venv/bin/python benchmarks/import_export.py --quick          # 10k rows, 2 rounds

PostgreSQL from --url (default $DATAFLOW_IMPORT_BENCH_URL or postgres://root@127.0.0.1:5432/
dataflow_import_bench; created and migrated when missing; the shop tables are emptied).
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import setup_django

DEFAULT_URL = os.environ.get(
    "DATAFLOW_IMPORT_BENCH_URL", "postgres://root@127.0.0.1:5432/dataflow_import_bench"
)
HEADER = ["name", "sku", "price", "stock", "active", "description"]
BLOCK = 1 << 16


def generate(path: Path, count: int) -> None:
    """A CSV of count products as an export from another system would hold them."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(count):
            description = "" if i % 4 == 0 else f"description of item {i}"
            writer.writerow(
                [f"Item {i}", f"SKU-{i}", f"{i % 10_000 / 100:.2f}", i % 1000, i % 3 != 0, description]
            )


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE shop_product RESTART IDENTITY CASCADE")


def raw_connection() -> Any:
    """psycopg's connection under Django's."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def command_import(path: Path) -> None:
    from django.core.management import call_command

    call_command("dataflow_import", "shop.Product", str(path), stdout=io.StringIO(), skip_checks=True)


def copy_rows(path: Path) -> None:
    """What a hand-written psycopg loader does: parse the CSV, send each row through COPY."""
    from django.utils import timezone

    now = timezone.now()
    raw = raw_connection()
    sql = f"COPY shop_product ({', '.join(HEADER)}, created_at, updated_at) FROM STDIN"
    with path.open(encoding="utf-8", newline="") as source, raw.transaction(), raw.cursor() as cursor:
        reader = csv.reader(source)
        next(reader)
        with cursor.copy(sql) as copy:
            for name, sku, price, stock, active, description in reader:
                copy.write_row((name, sku, price, stock, active, description or None, now, now))


def copy_file(path: Path) -> None:
    """COPY FROM STDIN in CSV format, fed the file's bytes: the server parses everything."""
    raw = raw_connection()
    sql = f"COPY shop_product ({', '.join(HEADER)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    with path.open("rb") as source, raw.transaction(), raw.cursor() as cursor, cursor.copy(sql) as copy:
        while block := source.read(BLOCK):
            copy.write(block)


def orm_bulk_create(path: Path) -> None:
    """csv.DictReader -> Product instances -> bulk_create, 1,000 rows at a time."""
    from django.db import transaction

    from shop.models import Product

    chunk: list[Product] = []
    with path.open(encoding="utf-8", newline="") as source, transaction.atomic():
        for row in csv.DictReader(source):
            chunk.append(
                Product(
                    name=row["name"],
                    sku=row["sku"],
                    price=Decimal(row["price"]),
                    stock=int(row["stock"]),
                    active=row["active"] == "True",
                    description=row["description"] or None,
                )
            )
            if len(chunk) == 1000:
                Product.objects.bulk_create(chunk)
                chunk = []
        Product.objects.bulk_create(chunk)


def command_export(target: Path) -> None:
    from django.core.management import call_command

    call_command("dataflow_export", "shop.Product", "-o", str(target), stderr=io.StringIO(), skip_checks=True)


def orm_export(target: Path) -> None:
    """What a hand-written ORM export does: values_list().iterator() into csv.writer."""
    from django.db import transaction

    from shop.models import Product

    names = [f.attname for f in Product._meta.concrete_fields]
    with target.open("w", encoding="utf-8", newline="") as out, transaction.atomic():
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(Product.objects.order_by("id").values_list(*names).iterator(chunk_size=1000))


def copy_to(target: Path) -> None:
    from shop.models import Product

    columns = ", ".join(f.column for f in Product._meta.concrete_fields)
    raw = raw_connection()
    sql = f"COPY (SELECT {columns} FROM shop_product ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true)"
    with target.open("wb") as out, raw.transaction(), raw.cursor() as cursor, cursor.copy(sql) as copy:
        for block in copy:
            out.write(block)


def measure(
    sides: dict[str, Callable[[], object]], rounds: int, reset: Callable[[], None]
) -> dict[str, float]:
    """Median seconds per side; sides alternate and the first side rotates every round."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            reset()
            gc.collect()
            started = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, count: int, medians: dict[str, float], base: str) -> None:
    print(f"\n{title}, {count:,} rows (median of the rounds)")
    for name, seconds in medians.items():
        ratio = seconds / medians[base]
        print(
            f"  {name:58}{seconds:8.3f} s{count / seconds:11,.0f} rows/s   {ratio:5.2f}x the time of {base}"
        )


def with_timestamp_defaults(on: bool) -> None:
    from django.db import connection

    action = "SET DEFAULT now()" if on else "DROP DEFAULT"
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE shop_product ALTER COLUMN created_at {action}, ALTER COLUMN updated_at {action}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds = 10_000, 2
    where = setup_django("postgres", args.url)
    from django.conf import settings

    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_BULK_ROWS": max(args.rows, 1_000_000)}
    print(f"PostgreSQL database {where}; {args.rows:,} rows; {args.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="dataflow-import-bench-") as tmp:
        source = Path(tmp) / "products.csv"
        generate(source, args.rows)
        print(f"input: {source.stat().st_size / 1e6:.1f} MB of CSV")
        with_timestamp_defaults(True)
        try:
            imports = measure(
                {
                    "dataflow_import (BulkCreate node, COPY)": lambda: command_import(source),
                    "psycopg COPY, rows parsed by csv.reader": lambda: copy_rows(source),
                    "psycopg COPY FROM STDIN (FORMAT csv), file bytes": lambda: copy_file(source),
                    "csv.DictReader + bulk_create(batch_size=1000)": lambda: orm_bulk_create(source),
                },
                args.rounds,
                truncate,
            )
        finally:
            with_timestamp_defaults(False)
        report("import", args.rows, imports, "psycopg COPY, rows parsed by csv.reader")
        command = imports["dataflow_import (BulkCreate node, COPY)"]
        orm = imports["csv.DictReader + bulk_create(batch_size=1000)"]
        print(f"  dataflow_import is {orm / command:.2f}x as fast as csv.DictReader + bulk_create")
        truncate()
        command_import(source)
        target = Path(tmp) / "out.csv"
        exports = measure(
            {
                "dataflow_export (iterator, csv.writer)": lambda: command_export(target),
                "psycopg COPY (SELECT ...) TO STDOUT (FORMAT csv)": lambda: copy_to(target),
                "values_list().iterator() + csv.writer (ORM)": lambda: orm_export(target),
            },
            args.rounds,
            lambda: None,
        )
        report("export", args.rows, exports, "psycopg COPY (SELECT ...) TO STDOUT (FORMAT csv)")
    truncate()


if __name__ == "__main__":
    main()
