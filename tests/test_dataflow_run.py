"""manage.py dataflow_run without tenants: definitions and files, inputs, --async/--wait, --json, exit
codes (the tenant options are tested against real schemas in tests/tenants/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_dataflow import WorkflowBuilder
from django_dataflow.models import WorkflowDefinition, WorkflowRun
from shop.models import Order, Product
from tests.commands.helpers import run_on_a_terminal
from tests.conftest import db_state

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def product_and_order() -> dict[str, Any]:
    """Create a product (sku from inputs) and an order of qty of it, connected."""
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "product", {"name": "Lamp", "sku": "{{sku}}", "price": "2.50"})
    builder.add_node("OrderCreateNode", "order", {"quantity": "{{qty}}"})
    builder.add_connection("product", "id", "order", "product_id")
    return builder.build().to_dict()


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(product_and_order()))
    return path


def run_command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("dataflow_run", *args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        run_command(*args)
    return caught.value


def test_a_file_runs_with_inputs(workflow_file: Path) -> None:
    out, _ = run_command(str(workflow_file), "--input", "sku=F-1", "--input", "qty=3")
    assert "succeeded" in out
    order = Order.objects.get()
    assert (order.product.sku, order.quantity) == ("F-1", 3)
    assert '"quantity": 3' in out


def test_a_definition_runs_by_name_with_inputs_from_json(tmp_path: Path) -> None:
    WorkflowDefinition.objects.create(name="nightly", workflow=product_and_order())
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"sku": "D-1", "qty": 1}))
    out, _ = run_command("nightly", "--inputs-json", str(inputs), "--input", "qty=5", "--json")
    outcome = json.loads(out)
    assert outcome["status"] == "succeeded"
    assert outcome["tenant"] is None
    assert outcome["results"]["order"]["quantity"] == 5  # --input overrides the file
    assert Product.objects.get().sku == "D-1"


def test_input_values_are_json_when_they_are_json() -> None:
    from django_dataflow.management.commands.dataflow_run import parse_input

    assert parse_input("qty=2") == ("qty", 2)
    assert parse_input("flag=true") == ("flag", True)
    assert parse_input("sku=L-1") == ("sku", "L-1")
    assert parse_input("tags=[1, 2]") == ("tags", [1, 2])
    assert parse_input("empty=") == ("empty", "")


def test_a_failing_run_exits_1_and_writes_nothing(workflow_file: Path) -> None:
    Product.objects.create(name="Taken", sku="F-1", price="1")
    before = db_state()
    error = refused(str(workflow_file), "--input", "sku=F-1", "--input", "qty=1")
    assert error.returncode == 1
    assert db_state() == before


def test_a_failing_run_in_json_names_the_node(workflow_file: Path) -> None:
    Product.objects.create(name="Taken", sku="F-1", price="1")
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("dataflow_run", str(workflow_file), "--input", "sku=F-1", "--input", "qty=1",
                     "--json", stdout=out, stderr=StringIO())
    assert caught.value.returncode == 1
    outcome = json.loads(out.getvalue())
    assert (outcome["status"], outcome["node_id"], outcome["error_type"]) == (
        "failed", "product", "NodeExecutionError"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no workflow definition named 'nope'"),
        (["{missing}.json"], "workflow file"),
        (["{file}", "--input", "sku"], "expected NAME=VALUE"),
        (["{file}", "--input", "sku=A"], "qty"),
        (["{file}", "--inputs-json", "{file_list}"], "must hold a JSON object"),
        (["{file}", "--inputs-json", "{missing}.json"], "--inputs-json"),
        (["{file}", "--tenant", "acme", "--input", "sku=A"], "django-tenants is not installed"),
        (["{file}", "--all-tenants"], "needs django-tenants"),
        (["{file}", "--timeout", "3", "--input", "sku=A", "--input", "qty=1"], "--timeout only applies"),
        (["{bad}"], "NopeNode"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    tmp_path: Path, workflow_file: Path, args: list[str], message: str
) -> None:
    listing = tmp_path / "list.json"
    listing.write_text("[1]")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"id": "x", "type": "NopeNode", "params": {}}]}))
    values = {"file": str(workflow_file), "missing": str(tmp_path / "missing"), "file_list": str(listing),
              "bad": str(bad)}
    before = db_state()
    error = refused(*[a.format(**values) for a in args])
    assert error.returncode == 2
    assert message in str(error)
    assert db_state() == before


@pytest.mark.django_db(transaction=True)  # --wait needs the submission committed
def test_async_submits_and_wait_returns_the_results(
    workflow_file: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run_command(str(workflow_file), "--async", "--input=sku=A-1", "--input=qty=1", "--json")
    submitted = json.loads(out)
    assert submitted["status"] == "submitted"
    assert WorkflowRun.objects.get(pk=submitted["run_id"]).status == "succeeded"
    out, _ = run_command(str(workflow_file), "--wait", "--input", "sku=A-2", "--input", "qty=2", "--json")
    waited = json.loads(out)
    assert waited["status"] == "succeeded"
    assert waited["results"]["order"]["quantity"] == 2
    assert WorkflowRun.objects.get(pk=waited["run_id"]).status == "succeeded"


@pytest.mark.django_db(transaction=True)  # --wait needs the submission committed
def test_wait_on_a_terminal_shows_the_run_and_its_nodes(workflow_file: Path, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    code, out, err = run_on_a_terminal(str(workflow_file), "--wait", "--input=sku=T-1", "--input=qty=2")
    assert code == 0
    run = WorkflowRun.objects.get()
    lines = err.splitlines()
    assert lines[0].startswith("product: done, 1 rows in ")
    assert lines[1].startswith("order: done, 1 rows in ")
    assert lines[2:] == [f"run {run.run_id}: succeeded"]
    assert out.startswith(f"run {run.run_id} succeeded\n")  # stdout as without a terminal

    # --json: the same document, nothing on stderr
    code, out, err = run_on_a_terminal(str(workflow_file), "--wait", "--input=sku=T-2", "--input=qty=2",
                                       "--json")
    assert (code, err) == (0, "")
    assert set(json.loads(out)) == {"tenant", "run_id", "status", "results"}


@pytest.mark.django_db(transaction=True)
def test_wait_on_a_terminal_shows_a_failed_run_and_exits_1(workflow_file: Path, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    Product.objects.create(name="Taken", sku="F-1", price="1")
    code, _, err = run_on_a_terminal(str(workflow_file), "--wait", "--input=sku=F-1", "--input=qty=1")
    assert code == 1
    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert f"run {run.run_id}: failed" in err.splitlines()
    assert "order" not in err  # never ran
    assert Order.objects.count() == 0


def test_help_names_every_option_and_the_exit_codes() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")])}
    env.pop("DATABASE_URL", None)
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    proc = subprocess.run(
        [sys.executable, "-m", "django", "dataflow_run", "--help"], env=env, capture_output=True, text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("--input", "--inputs-json", "--async", "--wait", "--tenant", "--all-tenants", "--json"):
        assert option in proc.stdout
    assert "Exit codes: 0" in " ".join(proc.stdout.split())


def test_exit_codes_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")])}
    env.pop("DATABASE_URL", None)
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    proc = subprocess.run(
        [sys.executable, "-m", "django", "dataflow_run", "wf.json", "--timeout", "3"], env=env,
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--timeout only applies with --wait" in proc.stderr
