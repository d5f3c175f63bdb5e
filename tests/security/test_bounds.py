"""Resource bounds from the DATAFLOW settings: nodes and connections per workflow, params and inputs
size, rows per bulk node, and PostgreSQL's statement timeout per run."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Warning
from django.db import connection, transaction
from django.test import override_settings

from django_dataflow import LocalRuntime, NodeExecutionError, Workflow, WorkflowValidationError, conf
from django_dataflow.checks import check_settings, check_statement_timeout
from django_dataflow.exceptions import MESSAGE_PROBLEMS
from shop.models import Product
from tests.conftest import build
from tests.security.conftest import database_state

pytestmark = pytest.mark.django_db


def count_nodes(n: int) -> dict[str, Any]:
    return {"nodes": [{"id": f"n{i}", "type": "ProductCountNode"} for i in range(n)]}


def test_defaults() -> None:
    assert conf.max_nodes() == 1_000
    assert conf.max_connections() == 10_000
    assert conf.max_params_bytes() == 1_048_576
    assert conf.max_bulk_rows() == 1_000_000
    assert conf.statement_timeout_ms() is None


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("MAX_NODES", 0, "django_dataflow.E003"),
        ("MAX_NODES", "10", "django_dataflow.E002"),
        ("MAX_CONNECTIONS", -1, "django_dataflow.E003"),
        ("MAX_PARAMS_BYTES", 1.5, "django_dataflow.E002"),
        ("MAX_BULK_ROWS", True, "django_dataflow.E002"),
        ("STATEMENT_TIMEOUT_MS", 0, "django_dataflow.E003"),
        ("STATEMENT_TIMEOUT_MS", "5s", "django_dataflow.E002"),
    ],
)
def test_invalid_bounds_are_check_errors(key: str, value: Any, check_id: str) -> None:
    with override_settings(DATAFLOW={key: value}):
        messages = check_settings()
    assert [m.id for m in messages] == [check_id]
    assert key in messages[0].msg


def test_w002_statement_timeout_without_postgresql() -> None:
    with override_settings(DATAFLOW={"STATEMENT_TIMEOUT_MS": 500}):
        messages = check_statement_timeout()
    if connection.vendor == "postgresql":
        assert messages == []
    else:
        assert [m.id for m in messages] == ["django_dataflow.W002"]
        assert isinstance(messages[0], Warning)
    with override_settings(DATAFLOW={}):
        assert check_statement_timeout() == []


# Nodes and connections -----------------------------------------------------------------------------


def test_a_100k_node_workflow_is_refused_before_any_node_is_looked_at(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict(count_nodes(100_000))
    assert str(info.value) == "the workflow has 100000 nodes, more than DATAFLOW['MAX_NODES'] (1000)"


def test_max_nodes_is_configurable_and_applies_to_the_builder(unchanged_db: Any) -> None:
    with override_settings(DATAFLOW={"MAX_NODES": 3}):
        Workflow.from_dict(count_nodes(3))
        with pytest.raises(
            WorkflowValidationError, match=r"4 nodes, more than DATAFLOW\['MAX_NODES'\] \(3\)"
        ):
            build([("ProductCountNode", f"n{i}", {}) for i in range(4)])


def test_max_connections(unchanged_db: Any) -> None:
    data = count_nodes(2) | {
        "connections": [
            {"source": "n0", "source_path": "count", "target": "n1", "target_param": f"filter.stock.$in.{i}"}
            for i in range(3)
        ]
    }
    with override_settings(DATAFLOW={"MAX_CONNECTIONS": 2}):
        with pytest.raises(WorkflowValidationError, match=r"3 connections, more than .*MAX_CONNECTIONS"):
            Workflow.from_dict(data)


def test_a_large_workflow_within_the_bounds_builds_in_linear_time() -> None:
    # 100k nodes in a chain with a cycle at the end: the checks are linear (the build would take
    # hours if the cycle search or the connection checks were quadratic).
    n = 100_000
    data = count_nodes(n) | {
        "connections": [
            {"source": f"n{i}", "source_path": "count", "target": f"n{i + 1}", "target_param": "filter.stock"}
            for i in range(n - 1)
        ]
        + [{"source": f"n{n - 1}", "source_path": "count", "target": "n0", "target_param": "filter.stock"}]
    }
    with override_settings(DATAFLOW={"MAX_NODES": n, "MAX_CONNECTIONS": n}):
        with pytest.raises(WorkflowValidationError) as info:
            Workflow.from_dict(data)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("the connections form a cycle: n1 -> n2 -> n3")
    assert info.value.errors[0].endswith("n99999 -> n0 -> n1 (100000 nodes)")


def test_error_messages_stay_readable_however_many_problems(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict({"nodes": [{"id": f"n{i}", "type": "Nope"} for i in range(500)]})
    assert len(info.value.errors) == 500
    assert str(info.value).count("\n  - ") == MESSAGE_PROBLEMS
    assert f"and {500 - MESSAGE_PROBLEMS} more (see .errors)" in str(info.value)


# Params and inputs ---------------------------------------------------------------------------------


def test_params_larger_than_max_params_bytes(unchanged_db: Any) -> None:
    params = {"filter": {"name": {"$in": ["x" * 1000] * 2000}}}
    with pytest.raises(
        WorkflowValidationError, match=r"node 'n': params is larger than DATAFLOW\['MAX_PARAMS_BYTES'\]"
    ):
        build([("ProductListNode", "n", params)])
    with override_settings(DATAFLOW={"MAX_PARAMS_BYTES": 4_000_000}):
        build([("ProductListNode", "n", params)])


def test_inputs_larger_than_max_params_bytes(unchanged_db: Any) -> None:
    workflow = build([("ProductListNode", "n", {"filter": {"name": "{{name}}"}})])
    with pytest.raises(
        WorkflowValidationError, match=r"inputs is larger than DATAFLOW\['MAX_PARAMS_BYTES'\]"
    ):
        LocalRuntime().execute(workflow, {"name": "x" * 2_000_000})


def test_bulk_rows_passed_as_an_input_are_bounded_by_row_count_not_size(db: Any) -> None:
    # 3 MB of rows, passed the way an ETL job passes them: the whole 'data' param is one placeholder.
    rows = [
        {"name": "n" * 150, "sku": f"S-{i}", "price": "1.00", "description": "d" * 100} for i in range(10_000)
    ]
    workflow = build([("ProductBulkCreateNode", "load", {"data": "{{rows}}"})])
    assert workflow.row_inputs == {"rows"}
    results, _ = LocalRuntime().execute(workflow, {"rows": rows})
    assert results["load"] == {"created": 10_000}
    with override_settings(DATAFLOW={"MAX_BULK_ROWS": 9_999}):
        with pytest.raises(WorkflowValidationError, match=r"input 'rows' holds more than DATAFLOW"):
            LocalRuntime().execute(workflow, {"rows": rows})
    assert Product.objects.count() == 10_000


def test_an_input_also_used_outside_bulk_rows_is_sized(unchanged_db: Any) -> None:
    rows = [{"name": "n" * 150, "sku": f"S-{i}", "price": "1.00"} for i in range(10_000)]
    workflow = build([
        ("ProductBulkCreateNode", "load", {"data": "{{rows}}"}),
        ("ProductListNode", "list", {"filter": {"name": {"$in": "{{rows}}"}}}),
    ])
    assert workflow.row_inputs == frozenset()
    before = database_state()
    with pytest.raises(WorkflowValidationError, match=r"inputs is larger than DATAFLOW\['MAX_PARAMS_"):
        LocalRuntime().execute(workflow, {"rows": rows})
    assert database_state() == before


def test_a_bulk_row_value_is_still_bounded_by_its_field(unchanged_db: Any) -> None:
    workflow = build([("ProductBulkCreateNode", "load", {"data": "{{rows}}"})])
    before = database_state()
    with pytest.raises(NodeExecutionError, match=r"row 1 .*field 'name'"):
        LocalRuntime().execute(workflow, {"rows": [
            {"name": "ok", "sku": "A", "price": "1"}, {"name": "x" * 2_000_000, "sku": "B", "price": "1"},
        ]})
    assert database_state() == before


def test_recorded_runs_never_record_refused_inputs(unchanged_db: Any) -> None:
    workflow = build([("ProductListNode", "n", {"filter": {"name": "{{name}}"}})])
    with pytest.raises(WorkflowValidationError, match="NUL"):
        LocalRuntime(record=True).execute(workflow, {"name": "a\x00b"})


def test_deep_nesting_is_refused_without_recursion(unchanged_db: Any) -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(WorkflowValidationError, match="nested deeper than 64 levels"):
        build([("CustomerCreateNode", "n", {"name": "A", "email": "a@x.io", "metadata": deep})])
    with pytest.raises(WorkflowValidationError, match="nested deeper than 64 levels"):
        LocalRuntime().execute(build([("CustomerCountNode", "n", {"filter": "{{f}}"})]), {"f": deep})
    text = (
        '{"nodes": [{"id": "n", "type": "CustomerCountNode", "params": '
        + "[" * 100_000
        + "]" * 100_000
        + "}]}"
    )
    with pytest.raises(WorkflowValidationError, match=r"nested too deeply|nested deeper"):
        Workflow.from_json(text)


def test_self_containing_params_are_refused(unchanged_db: Any) -> None:
    loop: dict[str, Any] = {}
    loop["a"] = loop
    with pytest.raises(WorkflowValidationError, match="nested deeper"):
        build([("CustomerCreateNode", "n", {"name": "A", "email": "a@x.io", "metadata": loop})])


# Bulk rows -----------------------------------------------------------------------------------------


def rows(n: int) -> list[dict[str, Any]]:
    return [{"name": f"P{i}", "sku": f"S-{i}", "price": "1"} for i in range(n)]


def test_static_bulk_data_over_max_bulk_rows(unchanged_db: Any) -> None:
    with override_settings(DATAFLOW={"MAX_BULK_ROWS": 5}):
        with pytest.raises(
            WorkflowValidationError, match=r"'data' holds more than DATAFLOW\['MAX_BULK_ROWS'\] \(5\)"
        ):
            build([("ProductBulkCreateNode", "b", {"data": rows(6)})])
        build([("ProductBulkCreateNode", "b", {"data": rows(5)})])


def test_streamed_bulk_data_is_counted_and_rolled_back(unchanged_db: Any) -> None:
    workflow = build([("ProductBulkCreateNode", "b", {"data": (row for row in rows(8)), "batch_size": 2})])
    with override_settings(DATAFLOW={"MAX_BULK_ROWS": 5}):
        with pytest.raises(NodeExecutionError, match=r"more than DATAFLOW\['MAX_BULK_ROWS'\] \(5\)") as info:
            LocalRuntime().execute(workflow)
    assert info.value.node_id == "b"
    assert not Product.objects.exists()  # the chunks written before the sixth row were rolled back


def test_bulk_data_from_inputs_is_bounded(unchanged_db: Any) -> None:
    workflow = build([("ProductBulkCreateNode", "b", {"data": "{{rows}}"})])
    with override_settings(DATAFLOW={"MAX_BULK_ROWS": 5}):
        # A list is counted before the run; a generator as the node consumes it.
        with pytest.raises(WorkflowValidationError, match=r"input 'rows' holds more than .*MAX_BULK_ROWS"):
            LocalRuntime().execute(workflow, {"rows": rows(6)})
        with pytest.raises(NodeExecutionError, match="MAX_BULK_ROWS"):
            LocalRuntime().execute(workflow, {"rows": iter(rows(6))})


@pytest.mark.parametrize(
    ("node_type", "params"),
    [
        ("ProductBulkDeleteNode", {"ids": list(range(6))}),
        ("ProductListNode", {"filter": {"stock": {"$in": list(range(6))}}}),
        ("ProductCountNode", {"filter": {"stock": {"$nin": list(range(6))}}}),
    ],
)
def test_list_operands_over_max_bulk_rows(unchanged_db: Any, node_type: str, params: dict[str, Any]) -> None:
    with override_settings(DATAFLOW={"MAX_BULK_ROWS": 5}):
        with pytest.raises(WorkflowValidationError, match="MAX_BULK_ROWS"):
            LocalRuntime().execute(build([(node_type, "n", params)]))


# Statement timeout ---------------------------------------------------------------------------------


def _current_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@pytest.fixture
def slow_statements() -> Any:
    """Make every statement of a node take 50 ms on the server (pg_sleep before each one)."""

    def sleep_first(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "shop_product" in sql:
            context["cursor"].execute("SELECT pg_sleep(0.05)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(sleep_first):
        yield


@pytest.mark.postgres
def test_statement_timeout_cancels_a_slow_run_and_rolls_it_back(
    unchanged_db: Any, slow_statements: Any
) -> None:
    workflow = build(
        [
            ("ProductCreateNode", "c", {"name": "Lamp", "sku": "L-9", "price": "1"}),
            ("ProductCountNode", "n", {}),
        ]
    )
    before = _current_timeout()
    with override_settings(DATAFLOW={"STATEMENT_TIMEOUT_MS": 10}):
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow)
    assert info.value.node_id == "c"
    assert "ran longer than DATAFLOW['STATEMENT_TIMEOUT_MS'] (10 ms)" in str(info.value)
    assert "statement timeout" in str(info.value.__cause__)
    assert _current_timeout() == before  # the savepoint's rollback took the setting with it


@pytest.mark.postgres
def test_statement_timeout_is_set_locally_and_restored(unchanged_db: Any) -> None:
    seen = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "shop_product" in sql:
            context["cursor"].execute("SHOW statement_timeout")
            seen.append(context["cursor"].fetchone()[0])
        return execute(sql, params, many, context)

    before = _current_timeout()
    with override_settings(DATAFLOW={"STATEMENT_TIMEOUT_MS": 1500}), connection.execute_wrapper(record):
        LocalRuntime().execute(build([("ProductCountNode", "n", {})]))
    assert seen == ["1500ms"]
    assert _current_timeout() == before  # inside the test's transaction: the caller's value is back


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_statement_timeout_ends_with_the_runs_own_transaction() -> None:
    with override_settings(DATAFLOW={"STATEMENT_TIMEOUT_MS": 1500}):
        LocalRuntime().execute(build([("ProductCountNode", "n", {})]))  # read-only: given a transaction
        assert not connection.in_atomic_block
        assert _current_timeout() == "0"
        with transaction.atomic():
            LocalRuntime().execute(build([("ProductCountNode", "n", {})]))
            assert _current_timeout() == "0"


def test_statement_timeout_is_not_applied_without_postgresql(unchanged_db: Any) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("the setting applies on PostgreSQL")
    with override_settings(DATAFLOW={"STATEMENT_TIMEOUT_MS": 1}):
        results, _ = LocalRuntime().execute(build([("ProductCountNode", "n", {})]))
    assert results == {"n": {"count": 0}}
    assert database_state()
