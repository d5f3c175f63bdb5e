"""Two applications sharing one database, each a separate process with its own settings.

Application A (testproject.settings_app_a) owns the 'catalog' app: it registers catalog.Item,
migrates it and so records it in the registry table. Application B (testproject.settings_app_b) has
no catalog code at all: it discovers catalog.Item, runs its nodes through load_from_database(),
records the schema it relies on, and its checks report the drift when A changes a field.

The database is PostgreSQL in the PostgreSQL pass (a database of its own, named after the test
database with '_apps' appended, created fresh for each test), an SQLite file in the SQLite pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "testproject" / "manage.py"

ITEM_V1 = '''
from django.db import models

import django_dataflow


@django_dataflow.register
class Item(models.Model):
    name = models.CharField(max_length=100)
    sku = models.CharField(max_length=32, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    notes = models.TextField(null=True, blank=True)

    def __str__(self):
        return self.name
'''

# A's change: price widened, notes dropped, colour added.
ITEM_V2 = ITEM_V1.replace("max_digits=10", "max_digits=12").replace(
    "notes = models.TextField(null=True, blank=True)", "colour = models.CharField(max_length=20, null=True)"
)

B_RUNS_NODES = '''
import importlib.util, json, sys
import django

django.setup()
assert importlib.util.find_spec("catalog") is None, "B must not have A's code"
from django_dataflow import LocalRuntime, WorkflowBuilder
from django_dataflow.registry import load_from_database

loaded = load_from_database(["catalog.Item"])
wf = WorkflowBuilder()
wf.add_node("ItemCreateNode", "new", json.loads(sys.argv[1]))
wf.add_node("ItemListNode", "all", {"order_by": ["sku"]})
results, _ = LocalRuntime().execute(wf.build())
print(json.dumps({"loaded": loaded.labels(), "fields": [f.name for f in loaded.entries[0].model._meta.fields],
                  "results": results}))
'''

A_CREATES_AND_COUNTS = '''
import json, sys
import django

django.setup()
from django_dataflow import LocalRuntime, WorkflowBuilder
from catalog.models import Item

wf = WorkflowBuilder()
if len(sys.argv) > 1:
    wf.add_node("ItemCreateNode", "new", json.loads(sys.argv[1]))
wf.add_node("ItemCountNode", "count", {})
results, _ = LocalRuntime().execute(wf.build())
skus = sorted(Item.objects.values_list("sku", flat=True))
print(json.dumps({"count": results["count"]["count"], "orm": skus}))
'''


class Apps:
    """Runs manage.py commands and scripts as application A or B on the shared database."""

    def __init__(self, tmp_path: Path, database_env: dict[str, str]) -> None:
        self.code_a = tmp_path / "app_a_code"
        catalog = self.code_a / "catalog"
        (catalog / "migrations").mkdir(parents=True)
        (catalog / "__init__.py").write_text("")
        (catalog / "migrations" / "__init__.py").write_text("")
        self.models_a = catalog / "models.py"
        self.models_a.write_text(ITEM_V1)
        self.database_env = database_env

    def env(self, app: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: the app's settings, the shared database, A's code for A only."""
        drop = ("DATABASE_URL", "DATAFLOW_SQLITE_PATH", "DJANGO_SETTINGS_MODULE", "PYTHONPATH")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        # A has the test project's 'shop' and its own 'catalog'; B has neither on its path.
        paths = [str(ROOT)] + ([str(ROOT / "testproject"), str(self.code_a)] if app == "a" else [])
        env["DJANGO_SETTINGS_MODULE"] = f"testproject.settings_app_{app}"
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env | self.database_env | (extra or {})

    def manage(
        self, app: str, *args: str, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """manage.py as app; returns the finished process (stdout and stderr as text)."""
        return self._run(app, [str(MANAGE), *args], extra)

    def script(self, app: str, code: str, *args: str) -> dict:
        """Run a Python script as app; returns the JSON it prints."""
        done = self._run(app, ["-c", code, *args], None)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _run(self, app: str, args: list[str], extra: dict[str, str] | None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env(app, extra), capture_output=True, text=True,
            timeout=300, check=False,
        )


def postgres_url() -> str | None:
    """The shared database's URL in the PostgreSQL pass: the test database's name + '_apps'."""
    explicit = os.environ.get("DATAFLOW_TEST_APPS_DATABASE_URL")
    if explicit:
        return explicit
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_apps"))


def recreate(url: str) -> None:
    """Drop and create the shared database, so every test starts from an empty one."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    """A and B on one fresh database of the pass's backend."""
    url = postgres_url()
    if url is None:
        yield Apps(tmp_path, {"DATAFLOW_SQLITE_PATH": str(tmp_path / "shared.sqlite3")})
        return
    recreate(url)
    yield Apps(tmp_path, {"DATABASE_URL": url})


def ok(done: subprocess.CompletedProcess) -> str:
    """stdout of a process that must have succeeded."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_a_registers_b_discovers_and_runs_nodes_then_reports_as_drift(apps: Apps) -> None:
    # A: a new project on an empty database. Checks warn, never fail, before anything is migrated.
    checked = apps.manage("a", "check")
    ok(checked)
    assert "django_dataflow.W101" in checked.stderr and "django_dataflow.I102" in checked.stderr
    ok(apps.manage("a", "makemigrations", "catalog", "--skip-checks"))
    plan = ok(apps.manage("a", "dataflow_migrate", "--plan"))
    assert "   * LOW    Create model Item: new table" in plan
    assert "HIGH" not in plan
    ok(apps.manage("a", "dataflow_migrate"))
    assert apps.script("a", A_CREATES_AND_COUNTS, '{"name": "Lamp", "sku": "A-1", "price": "9.50"}') == {
        "count": 1, "orm": ["A-1"],
    }

    # B: finds A's model in the registry table and runs its nodes without A's code.
    found = ok(apps.manage("b", "dataflow_discover"))
    assert "catalog.Item  table catalog_item  nodes Item*Node, version 1 recorded by 'app-a'" in found
    assert "auth.User" not in found  # B has code for it
    ran = apps.script("b", B_RUNS_NODES, '{"name": "Desk", "sku": "B-1", "price": "120.00", "notes": "oak"}')
    assert ran["loaded"] == ["catalog.Item"]
    listed = [(r["sku"], r["price"]) for r in ran["results"]["all"]["records"]]
    assert listed == [("A-1", "9.50"), ("B-1", "120.00")]
    assert apps.script("a", A_CREATES_AND_COUNTS) == {"count": 2, "orm": ["A-1", "B-1"]}  # A sees B's row
    recorded = ok(apps.manage("b", "dataflow_discover", "--record", "--model", "catalog.Item"))
    assert "recorded catalog.Item as used by 'app-b' (created)" in recorded
    assert "no issues" in apps.manage("b", "check").stdout
    ok(apps.manage("b", "dataflow_check"))

    # A changes a field (and drops one, adds one): its own checks see it before any migration.
    apps.models_a.write_text(ITEM_V2)
    before = apps.manage("a", "dataflow_check")
    assert before.returncode == 1
    assert "[W102] App 'catalog' has model changes without a migration" in before.stdout
    ok(apps.manage("a", "makemigrations", "catalog", "--skip-checks"))
    plan = ok(apps.manage("a", "dataflow_migrate", "--plan"))
    assert "   * HIGH   Remove field notes from item: drops the column and its data" in plan
    assert "   * LOW    Add field colour to item: nullable column" in plan
    assert "   * MEDIUM Alter field price on item: numeric(10,2) -> numeric(12,2): widening" in plan
    refused = apps.manage("a", "dataflow_migrate")
    assert refused.returncode == 1 and "Refused: 1 HIGH-risk operation(s)" in refused.stderr
    # A replica of A's code that must not migrate refuses, naming the application that may.
    replica = apps.manage(
        "a", "migrate", extra={"DATAFLOW_APPLICATION": "app-a-worker", "DATAFLOW_ALLOW_MIGRATIONS": "0"}
    )
    assert replica.returncode == 1
    assert "DATAFLOW['ALLOW_MIGRATIONS'] is false in application 'app-a-worker'" in replica.stderr
    assert "allowed to apply them, per the model registry: 'app-a'" in replica.stderr
    ok(apps.manage("a", "dataflow_migrate", "--allow-data-loss"))

    # B's check reports the drift against what B recorded, with a readable diff.
    warned = apps.manage("b", "check")
    ok(warned)
    assert "catalog.Item: (django_dataflow.W103)" in warned.stderr
    report = apps.manage("b", "dataflow_check")
    assert report.returncode == 1
    assert "[W103] catalog.Item (table catalog_item)" in report.stdout
    assert "this application ('app-b', recorded copy, version 1)" in report.stdout
    assert "application 'app-a' (catalog.Item, version 2" in report.stdout
    diff = report.stdout.split("here -> 'app-a':\n", 1)[1].splitlines()[:3]
    assert diff == [
        "    - notes: TextField, null",
        "    ~ price: max_digits 10 -> 12",
        "    + colour: CharField(max_length=20), null",
    ]

    # B still runs A's current schema at run time; recording it again clears the drift.
    chair = '{"name": "Chair", "sku": "B-2", "price": "1234567890.00", "colour": "red"}'
    ran = apps.script("b", B_RUNS_NODES, chair)
    assert "colour" in ran["fields"] and "notes" not in ran["fields"]
    assert ran["results"]["new"]["colour"] == "red"
    assert "(changed)" in ok(apps.manage("b", "dataflow_discover", "--record", "--model", "catalog.Item"))
    ok(apps.manage("b", "dataflow_check"))


def test_checks_never_break_start_up_without_a_database(tmp_path: Path) -> None:
    shared = Apps(tmp_path, {"DATABASE_URL": "postgres://root@127.0.0.1:1/nowhere"})
    checked = shared.manage("b", "check")
    ok(checked)
    assert "django_dataflow.I101" in checked.stderr
    assert "is not reachable" in checked.stderr
    unreachable = shared.manage("b", "dataflow_check")
    assert unreachable.returncode == 2
    assert "Could not check: the database is not reachable." in unreachable.stdout
