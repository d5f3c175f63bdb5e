"""The commands as real processes: exit codes from the command line, and bounded memory.

The memory test imports and exports a generated file of ROWS wide rows in a subprocess and compares
its peak RSS with the same commands on a one-row file: holding the rows would take twice
BOUND_MB more (over 1 KB a row as dicts), streaming takes a few chunks. A bound on
behaviour, not a timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ROWS = 60_000
BOUND_MB = 30

SCRIPT = """
import resource, sys
import django
django.setup()
from django.core.management import call_command
call_command(*sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment on this test's database (a migrated file on SQLite)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
    }
    if connection.vendor == "postgresql":
        from tests.celery_support import database_url

        env["DATABASE_URL"] = database_url(str(connection.settings_dict["NAME"]))
    else:
        env.pop("DATABASE_URL", None)
        env["DATAFLOW_SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
        manage(env, "migrate", "-v0")
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """manage.py ARGS in a subprocess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "testproject" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def peak_kb(env: dict[str, str], *args: str) -> int:
    """Peak RSS (KiB) of a process running one command."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.rsplit("PEAK_KB", 1)[1])


def generate(path: Path, rows: int, start: int = 0) -> Path:
    """A CSV of `rows` products, each with a 500-character description."""
    with path.open("w", encoding="utf-8") as out:
        out.write("name,sku,price,stock,active,description\n")
        filler = "d" * 500
        for i in range(start, start + rows):
            active = "true" if i % 2 else "false"
            out.write(f"Product {i},SKU-{i},{i % 1000}.{i % 100:02d},{i % 50},{active},{filler}\n")
    return path


def test_exit_codes_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("name,sku,price\nA,A-1,1\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,sku,price\nA,B-1,oops\n")
    assert manage(env, "dataflow_import").returncode == 2  # argparse: arguments missing
    assert manage(env, "dataflow_import", "shop.Product", str(good), "--batch-size", "0").returncode == 2
    assert manage(env, "dataflow_export", "shop.Product", "--format", "xml").returncode == 2
    assert manage(env, "dataflow_import", "shop.Nope", str(good)).returncode == 2
    failed = manage(env, "dataflow_import", "shop.Product", str(bad))
    assert failed.returncode == 1 and "line 2: field 'price'" in failed.stderr
    assert manage(env, "dataflow_import", "shop.Product", str(good)).returncode == 0
    exported = manage(env, "dataflow_export", "shop.Product", "--fields", "sku", "--filter", '{"sku": "A-1"}')
    assert exported.returncode == 0 and exported.stdout == "sku\nA-1\n"
    assert manage(env, "dataflow_export", "shop.Product", "--filter", "{").returncode == 2
    assert "--tenant" in manage(env, "dataflow_import", "--help").stdout


def test_import_and_export_memory_stays_bounded(env: dict[str, str], tmp_path: Path) -> Any:
    small = generate(tmp_path / "small.csv", 1, start=ROWS)
    large = generate(tmp_path / "large.csv", ROWS)
    base_import = peak_kb(env, "dataflow_import", "shop.Product", str(small))
    large_import = peak_kb(env, "dataflow_import", "shop.Product", str(large))
    base_export = peak_kb(
        env, "dataflow_export", "shop.Product", "--filter", '{"sku": "SKU-0"}', "-o", str(tmp_path / "a.csv")
    )
    large_export = peak_kb(env, "dataflow_export", "shop.Product", "-o", str(tmp_path / "b.csv"))
    assert len((tmp_path / "b.csv").read_text().splitlines()) == ROWS + 2  # header + the small file's row
    growth = {"import": (large_import - base_import) / 1024, "export": (large_export - base_export) / 1024}
    assert growth["import"] < BOUND_MB, growth
    assert growth["export"] < BOUND_MB, growth
