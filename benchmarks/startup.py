#!/usr/bin/env python
"""What django_dataflow adds to django.setup() for N registered models (default N=20 and 100).

Every measurement is a fresh interpreter (django.setup() runs once per process) running
bench_settings: contenttypes, auth and bench_app, whose models.py builds N models with type()
(six fields each, including a ForeignKey and a JSONField). The two variants alternate:

  without   django_dataflow is not installed and never imported
  with      django_dataflow is installed, every bench_app model is registered (register() in
            models.py, or DATAFLOW["MODELS"] with --register settings) and every feature is on:
            DATAFLOW["APPLICATION"] names the application in the persistent model registry,
            ALLOW_MIGRATIONS is false (migrate's policy and registry handlers are connected),
            the drift checks are registered (they run with manage.py check, not at setup)

Printed per N: the median django.setup() wall and CPU time of each variant, the median of the
paired differences, the ratio of the medians and the difference of the minimums; django_dataflow's
share measured inside django.setup() (importing the app and its models, the register() calls and
ready(); far less sensitive to other load on the machine than the difference of two totals); the
first get_node_class() after start-up, where node class generation now happens, and generation
alone with warm imports; and whether start-up touched the database: it is an SQLite file inside a
directory that does not exist, so any query would fail the run. The persistent registry's own
work, which happens after migrate or on demand and never at setup, is timed too: describing and
hashing every model, recording them in the registry table (an SQLite file made for it), and building
them as dynamic models as load_from_database() does. (`import django` and
django.apps.config, the first module django.setup() imports, are imported before the clock starts
in both variants, to install the phase timers.)

Targets: with/without <= 1.10x and a difference under 10 ms for 100 models.

    .venv/bin/python benchmarks/startup.py            # 12 runs of each variant per N
    .venv/bin/python benchmarks/startup.py --quick    # 4 runs each, a smoke test
    .venv/bin/python benchmarks/startup.py --runs 40 --models 20 100 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MISSING_DB = "/nonexistent-dataflow-bench/startup/db.sqlite3"
TARGET_RATIO = 1.10
TARGET_DIFF_MS = 10.0


def child() -> None:
    """One measurement: time django.setup() and report as one JSON line."""
    import django
    from django.apps.config import AppConfig  # the first thing django.setup() imports anyway

    # Time each app's import (AppConfig.create) and models import, in both variants alike.
    phases: dict[str, float] = {}
    create, import_models = AppConfig.create.__func__, AppConfig.import_models  # type: ignore[attr-defined]

    def timed_create(cls: type[AppConfig], entry: str) -> AppConfig:
        started = time.perf_counter()
        config = create(cls, entry)
        phases[f"import:{config.label}"] = (time.perf_counter() - started) * 1000
        return config

    def timed_import_models(self: AppConfig) -> None:
        started = time.perf_counter()
        import_models(self)
        phases[f"models:{self.label}"] = (time.perf_counter() - started) * 1000

    from django.apps.registry import Apps

    populate = Apps.populate

    def timed_populate(self: Apps, installed_apps: object = None) -> None:
        started = time.perf_counter()
        populate(self, installed_apps)
        phases["populate"] = (time.perf_counter() - started) * 1000

    Apps.populate = timed_populate  # type: ignore[method-assign]
    AppConfig.create = classmethod(timed_create)  # type: ignore[method-assign, assignment]
    AppConfig.import_models = timed_import_models  # type: ignore[method-assign]

    started, cpu_started = time.perf_counter(), time.process_time()
    django.setup()
    setup_ms = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - cpu_started) * 1000

    from bench_app.apps import READY_STAMPS
    from bench_app.models import REGISTER_MS
    from django.db import connections

    # Time between bench_app's ready() and bench_probe's: django_dataflow's ready() when it is
    # installed, nothing but the loop step when it is not.
    ready_ms = (READY_STAMPS["after"] - READY_STAMPS["before"]) * 1000
    own = ("import:django_dataflow", "models:django_dataflow")
    report: dict[str, object] = {
        "setup_ms": setup_ms,
        "cpu_ms": cpu_ms,
        "ready_ms": ready_ms,
        # django_dataflow's share of setup measured directly: importing the app and its models,
        # the register() calls in bench_app.models and ready().
        "share_ms": sum(phases.get(key, 0.0) for key in own) + REGISTER_MS + ready_ms,
        "import_ms": phases.get("import:django_dataflow", 0.0),
        "models_ms": phases.get("models:django_dataflow", 0.0),
        "register_ms": REGISTER_MS,
        "phases": phases,
        "opened": [c.alias for c in connections.all(initialized_only=True) if c.connection],
    }
    try:
        connections["default"].ensure_connection()
        report["db_reachable"] = True
    except Exception as exc:  # the point: the database cannot be reached at all
        report["db_reachable"] = False
        report["db_error"] = f"{type(exc).__name__}: {exc}"

    if os.environ.get("BENCH_DATAFLOW") == "1":
        from bench_app.models import MODELS

        from django_dataflow.registry import Registry, get_node_class, node_types

        # Node classes are generated per model on first lookup: the first get_node_class() pays
        # for the node modules' imports and that one model's classes, once per process.
        started = time.perf_counter()
        assert get_node_class("Bench000CreateNode") is not None
        report["first_use_ms"] = (time.perf_counter() - started) * 1000
        report["node_types"] = len(node_types())
        generate = []
        for _ in range(5):  # generation alone, modules already imported
            fresh = Registry()
            for model in MODELS:
                fresh.add(model, name=None, exclude_fields=())
            fresh.populate([])
            started = time.perf_counter()
            for entry in fresh.entries():
                assert len(entry.nodes) == 11
            generate.append((time.perf_counter() - started) * 1000)
        report["generate_ms"] = statistics.median(generate)
        report |= registry_work()
    print(json.dumps(report))


def registry_work() -> dict[str, float]:
    """The persistent registry's work, done after migrate / on demand, never in django.setup()."""
    from django.db import connections

    from django_dataflow.models import ModelSchemaVersion, RegisteredModel
    from django_dataflow.registry import registry
    from django_dataflow.schema_registry.description import describe_entry
    from django_dataflow.schema_registry.dynamic import build_models
    from django_dataflow.schema_registry.store import sync

    def median_ms(action: object, repeat: int = 5) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            action()  # type: ignore[operator]
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    def describe() -> list:
        found = [describe_entry(entry) for entry in registry().entries()]
        for description in found:
            assert len(description.schema_hash) == 64
        return found

    descriptions = describe()
    figures = {
        "describe_ms": median_ms(describe),
        "build_ms": median_ms(lambda: build_models(descriptions)),
    }
    # Record them in a registry table of their own: an SQLite file in a fresh directory.
    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(Path(tempfile.mkdtemp(prefix="dataflow-bench-reg-")) / "r.sqlite3")
    with connection.schema_editor() as editor:
        editor.create_model(RegisteredModel)
        editor.create_model(ModelSchemaVersion)

    def first_time() -> None:
        RegisteredModel.objects.all().delete()
        assert {r.status for r in sync("default")} == {"created"}

    figures["record_first_ms"] = median_ms(first_time, 3)
    figures["record_again_ms"] = median_ms(lambda: sync("default"), 3)
    return figures


def measure(models: int, enabled: bool, register: str, pycache: str) -> dict[str, object]:
    """Run one child process and return its report."""
    drop = ("DATABASE_URL", "PYTHONPATH", "DJANGO_SETTINGS_MODULE", "PYTHONDONTWRITEBYTECODE")
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(
        # Installed packages run from .pyc files; without them every run would compile the
        # sources again (PYTHONDONTWRITEBYTECODE is set in some environments). The cache lives
        # in a temporary directory so the source tree stays untouched.
        PYTHONPYCACHEPREFIX=pycache,
        DJANGO_SETTINGS_MODULE="bench_settings",
        BENCH_MODELS=str(models),
        BENCH_DATAFLOW="1" if enabled else "0",
        BENCH_REGISTER=register,
        BENCH_DB_PATH=MISSING_DB,
        PYTHONPATH=str(HERE),
    )
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        env=env,
        cwd=str(HERE),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed (models={models}, dataflow={enabled}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def bench(models: int, runs: int, register: str, pycache: str) -> dict[str, float]:
    """Alternate the two variants runs times each; print and return the medians."""
    for enabled in (False, True):  # warm the OS file cache and write .pyc files
        measure(models, enabled, register, pycache)
    with_dataflow: list[dict[str, object]] = []
    without: list[dict[str, object]] = []
    for run in range(runs):
        order = (True, False) if run % 2 else (False, True)
        for enabled in order:
            (with_dataflow if enabled else without).append(
                measure(models, enabled, register, pycache)
            )

    def median(rows: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(row[key]) for row in rows)  # type: ignore[arg-type]

    ready_on, ready_off = median(with_dataflow, "ready_ms"), median(without, "ready_ms")
    first_use = median(with_dataflow, "first_use_ms")
    generate = median(with_dataflow, "generate_ms")
    opened = sorted({a for row in with_dataflow + without for a in row["opened"]})  # type: ignore[attr-defined]
    reachable = any(row["db_reachable"] for row in with_dataflow + without)
    sample = with_dataflow[0]
    print(f"\n{models} models ({sample['node_types']} node types), {runs} runs of each variant")
    print(f"  {'django.setup()':38}{'wall ms':>10}{'cpu ms':>10}")
    figures: dict[str, float] = {"models": models}
    for key, label in (("setup_ms", "wall"), ("cpu_ms", "cpu")):
        off, on = median(without, key), median(with_dataflow, key)
        # Runs alternate in pairs, so the median of the pairs' differences resists load drift.
        pairs = zip(with_dataflow, without, strict=True)
        paired = statistics.median(float(a[key]) - float(b[key]) for a, b in pairs)  # type: ignore[arg-type]
        low_off = min(float(row[key]) for row in without)  # type: ignore[arg-type]
        low_on = min(float(row[key]) for row in with_dataflow)  # type: ignore[arg-type]
        figures |= {f"{label}_without": off, f"{label}_with": on, f"{label}_diff": paired,
                    f"{label}_ratio": on / off, f"{label}_mindiff": low_on - low_off}
    rows = (
        ("without django_dataflow (median)", "without", "8.1f"),
        ("with django_dataflow (median)", "with", "8.1f"),
        ("difference (median of pairs)", "diff", "+8.1f"),
        ("ratio with/without (medians)", "ratio", "8.3f"),
        ("difference of the minimums", "mindiff", "+8.1f"),
    )
    for text, key, spec in rows:
        wall, cpu = figures[f"wall_{key}"], figures[f"cpu_{key}"]
        print(f"  {text:38}{wall:{spec}}  {cpu:{spec}}")
    # Wall time also carries other processes' load; CPU time is closer to django_dataflow's own
    # cost (though a busy or virtualised host inflates it too).
    targets = [(f"target: ratio <= {TARGET_RATIO:.2f}x", "ratio", lambda v: v <= TARGET_RATIO)]
    if models >= 100:
        targets.insert(0, (f"target: difference < {TARGET_DIFF_MS:.0f} ms", "diff",
                           lambda v: v < TARGET_DIFF_MS))
    for text, key, ok in targets:
        print(f"  {text:38}{verdict(ok(figures[f'wall_{key}'])):>8}"
              f"{verdict(ok(figures[f'cpu_{key}'])):>10}")
    share = median(with_dataflow, "share_ms")
    parts = {key: median(with_dataflow, f"{key}_ms") for key in ("import", "models", "register")}
    target = f"target < {TARGET_DIFF_MS:.0f} ms  {verdict(share < TARGET_DIFF_MS)}"
    print(f"  django_dataflow's share measured inside setup  median {share:6.2f} ms  "
          f"{target if models >= 100 else '(info)'}")
    print(f"    importing the app {parts['import']:.2f}, its models {parts['models']:.2f}, "
          f"register() calls {parts['register']:.2f}, ready() {ready_on:.2f} ms"
          f" (ready() slot without it: {ready_off:.3f} ms)")
    print(f"  first get_node_class() after setup            median {first_use:6.2f} ms"
          "  (deferred: node modules + one model's classes)")
    print(f"  every model's node classes (warm imports)     median {generate:6.2f} ms"
          f"  ({generate * 1000 / models:.0f} us per model)")
    registry_rows = (
        ("describe + hash every model (post_migrate, dataflow_sync)", "describe_ms"),
        ("record them in the registry table, first time (SQLite)", "record_first_ms"),
        ("record them again, unchanged (every migrate)", "record_again_ms"),
        ("build them as dynamic models (load_from_database)", "build_ms"),
    )
    print("  persistent registry, after migrate or on demand (never in django.setup()):")
    for text, key in registry_rows:
        print(f"    {text:56} median {median(with_dataflow, key):7.2f} ms")
    print(f"  database connections opened during setup: {len(opened)} {opened or ''}")
    if reachable:
        print("  WARNING: the database was reachable, so 'no query' is not proven by this run")
    else:
        print(f"  database unreachable after setup ({sample['db_error']}):"
              " django.setup() and ready() ran no query")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="4 runs of each variant (smoke test)")
    parser.add_argument("--runs", type=int, default=None, help="runs of each variant (default 12)")
    parser.add_argument("--models", type=int, nargs="+", default=[20, 100], help="values of N")
    parser.add_argument(
        "--register", choices=("decorator", "settings"), default="decorator",
        help="register the models with register() in models.py or DATAFLOW['MODELS']",
    )
    args = parser.parse_args()
    if args.child:
        child()
        return
    if Path(MISSING_DB).parent.exists():
        raise SystemExit(f"{Path(MISSING_DB).parent} exists; the no-query check needs it absent")
    runs = args.runs or (4 if args.quick else 12)
    print(f"django.setup() in fresh processes, python {sys.version.split()[0]}, "
          f"registration via {args.register}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dataflow-bench-pyc-") as pycache:
        for models in args.models:
            bench(models, runs, args.register, pycache)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
