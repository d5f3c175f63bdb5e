"""dataflow_import --async: the run goes through CeleryRuntime and the worker reads the file.

In process (eager mode, no broker) on both databases; with a real `celery worker` process on
PostgreSQL and Redis (the worker-marked test).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import signing

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.models import WorkflowRun
from django_dataflow.runtime.handle import RunHandle
from django_dataflow.transfer.importer import ImportSpec, entry_for, workflow_for
from django_dataflow.transfer.references import MARKER, make_reference
from shop.models import Product
from tests.commands.helpers import TerminalOutput, call, write

pytestmark = pytest.mark.django_db(transaction=True)

CSV = "name,sku,price\nA,A-1,1\nB,B-1,2\n"


def test_async_wait_imports_through_a_recorded_run(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", CSV)
    code, out, message = call("dataflow_import", "shop.Product", path, "--async", "--wait")
    assert code == 0, message
    run = WorkflowRun.objects.get()
    assert run.status == "succeeded"
    # Not a terminal: the two report lines, as before the terminal display existed.
    assert out.splitlines() == [
        f"Submitted the import of {path} into shop.Product: run {run.run_id}.",
        f"Imported {path} into shop.Product: 2 created.",
    ]
    # The broker and the run row carry a signed reference, never the rows.
    assert set(run.inputs["rows"]) == {MARKER} and "A-1" not in str(run.inputs)
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A-1", "B-1"]


def test_async_wait_on_a_terminal_shows_the_run_like_dataflow_run(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", CSV)
    code, out, message = call(
        "dataflow_import", "shop.Product", path, "--async", "--wait", stdout=TerminalOutput()
    )
    assert code == 0, message
    run = WorkflowRun.objects.get()
    lines = out.splitlines()
    assert lines[0] == f"Submitted the import of {path} into shop.Product: run {run.run_id}."
    assert lines[1].startswith("import: done, 2 rows in ")
    assert lines[2:] == [f"run {run.run_id}: succeeded", f"Imported {path} into shop.Product: 2 created."]


def test_async_wait_on_a_terminal_shows_a_failed_import_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "name,sku,price\nA,A-1,1\nB,B-1,oops\n")
    code, out, message = call(
        "dataflow_import", "shop.Product", path, "--async", "--wait", stdout=TerminalOutput()
    )
    assert code == 1 and message.startswith("import failed, nothing was written: ")
    assert "line 3: field 'price'" in message
    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert out.splitlines()[1:] == [f"run {run.run_id}: failed"]  # the node never finished
    assert not Product.objects.exists()


def test_a_wait_that_times_out_says_the_import_goes_on(tmp_path: Path, monkeypatch: Any) -> None:
    # A broker without a worker: the run is recorded and never picked up.
    monkeypatch.setattr(RunHandle, "_dispatch", lambda self: None)
    path = write(tmp_path / "p.csv", CSV)
    code, out, message = call(
        "dataflow_import", "shop.Product", path, "--async", "--wait", "--timeout", "0",
        stdout=TerminalOutput(),
    )
    run = WorkflowRun.objects.get()
    assert code == 1 and run.status == "pending"
    assert message == (
        f"gave up waiting: run {run.run_id} is still pending after 0.0s; the import goes on "
        "(its WorkflowRun row will say how it ends)"
    )
    assert out.splitlines()[1:] == [f"run {run.run_id}: pending (waiting for a worker)"]


def test_async_bad_row_fails_the_run_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "name,sku,price\nA,A-1,1\nB,B-1,oops\n")
    code, _, message = call("dataflow_import", "shop.Product", path, "--async", "--wait")
    assert code == 1 and "line 3: field 'price'" in message
    assert WorkflowRun.objects.get().status == "failed"
    assert not Product.objects.exists()


def test_async_skip_bad_rows_writes_the_reject_file_where_the_worker_runs(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "name,sku,price\nA,A-1,1\nB,B-1,oops\n")
    rejects = tmp_path / "rejects.csv"
    code, out, _ = call(
        "dataflow_import",
        "shop.Product",
        path,
        "--async",
        "--wait",
        "--skip-bad-rows",
        "--reject-file",
        rejects,
    )
    assert code == 0 and "written by the worker" in out
    assert "B-1,oops,3," in rejects.read_text()
    assert list(Product.objects.values_list("sku", flat=True)) == ["A-1"]


def test_only_signed_references_are_read(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", CSV)
    spec = ImportSpec(model="shop.Product", path=str(path), fmt="csv")
    workflow = workflow_for(entry_for("shop.Product"), spec)
    forged = [
        {MARKER: "not a token"},
        {MARKER: signing.dumps(spec.to_dict(), salt="another.salt")},
        {
            MARKER: signing.dumps(
                spec.to_dict(), key="another-secret-key", salt="django_dataflow.transfer.file-reference"
            )
        },
    ]
    for reference in forged:
        with pytest.raises(
            WorkflowValidationError, match="input 'rows' is a file reference with an invalid signature"
        ):
            LocalRuntime().execute(workflow, inputs={"rows": reference})
    assert not Product.objects.exists()
    LocalRuntime().execute(workflow, inputs={"rows": make_reference(spec.to_dict())})
    assert Product.objects.count() == 2


@pytest.fixture
def worker(django_db_setup: Any, tmp_path: Path) -> Iterator[Any]:
    from django.db import connections

    from tests.celery_support import WorkerProcess, require_celery_and_redis

    require_celery_and_redis()
    process = WorkerProcess(
        f"dataflow-import-{uuid.uuid4().hex[:8]}", str(connections["default"].settings_dict["NAME"]), tmp_path
    ).start()
    yield process
    process.stop()


@pytest.mark.worker
def test_a_real_worker_reads_the_file(tmp_path: Path, worker: Any) -> None:
    from tests.celery_support import sending_to

    path = write(tmp_path / "p.csv", CSV)
    with sending_to(worker.queue):
        code, out, message = call(
            "dataflow_import", "shop.Product", path, "--async", "--wait", "--timeout", "60",
            stdout=TerminalOutput(),
        )
    assert code == 0, message + worker.log()[-3000:]
    run = WorkflowRun.objects.get()
    assert run.runtime == "celery"
    lines = out.split("\n")  # not splitlines(): a progress bar is redrawn after a carriage return
    assert lines[-4].startswith("import: done, 2 rows in ")
    assert lines[-3:] == [
        f"run {run.run_id}: succeeded", f"Imported {path} into shop.Product: 2 created.", ""
    ]
    before = {f"run {run.run_id}: pending (waiting for a worker)", f"run {run.run_id}: running"}
    # What it saw of the run before it finished: statuses, and the rows the worker reported.
    assert all(line in before or re.fullmatch(r"(\rimport: \d+ rows)+", line) for line in lines[1:-4])
    assert Product.objects.count() == 2


def test_async_without_wait_prints_the_run_id(tmp_path: Path) -> None:
    code, out, _ = call("dataflow_import", "shop.Product", write(tmp_path / "p.csv", CSV), "--async")
    assert code == 0
    run = WorkflowRun.objects.get()
    assert f"run {run.run_id}" in out and "created" not in out
    assert run.inputs["rows"][MARKER]  # eager mode (no broker): already run in this process
