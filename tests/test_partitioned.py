"""CeleryRuntime.submit_partitioned(): slices loaded in parallel by two real workers into UNLOGGED
staging tables, published in one transaction; a failing slice fails the job and drops every table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test import override_settings

from django_dataflow import CeleryRuntime
from django_dataflow.exceptions import DataflowError, WorkflowValidationError
from shop.models import Product
from tests.celery_support import WorkerProcess, require_celery_and_redis, sending_to
from tests.conftest import build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

QUEUE = f"dataflow-test-partitioned-{uuid.uuid4().hex[:8]}"


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Product rows with unique skus."""
    return [
        {"name": f"Item {i}", "sku": f"PT-{i}", "price": f"{i}.25", "stock": i}
        for i in range(start, start + count)
    ]


def load(data: list[dict[str, Any]], batch_size: int = 50) -> Any:
    """A one-node BulkCreate workflow."""
    return build([("ProductBulkCreateNode", "load", {"data": data, "batch_size": batch_size})])


def staging_tables() -> list[str]:
    """Partition staging tables left in the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE 'dataflow_part_%%' AND relkind = 'r'")
        return [name for (name,) in cursor.fetchall()]


def eventually_no_staging(timeout: float = 20) -> list[str]:
    """Staging tables after waiting up to timeout for them to go (the errback runs on a worker)."""
    deadline = time.monotonic() + timeout
    left = staging_tables()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = staging_tables()
    return left


class TestEager:
    """Without a broker the slices run in this process, one after the other: same code paths."""

    @pytest.fixture(autouse=True)
    def eager(self) -> Iterator[None]:
        from django.conf import settings

        with override_settings(DATAFLOW={**settings.DATAFLOW, "CELERY_EAGER": True}):
            yield

    def test_loads_every_slice_atomically(self) -> None:
        result = CeleryRuntime().submit_partitioned(load(rows(250)), partitions=3).wait()
        assert result["load"] == {"created": 250}
        assert [p["rows"] for p in result["partitions"]] == [84, 84, 82]
        assert Product.objects.count() == 250
        assert staging_tables() == []

    def test_failing_slice_leaves_nothing(self) -> None:
        data = rows(120)
        data[100]["price"] = "oops"
        handle = CeleryRuntime().submit_partitioned(load(data), partitions=2)
        with pytest.raises(DataflowError) as info:
            handle.wait()
        assert "partition 1" in str(info.value)
        assert "row 100" in str(info.value) and "'price'" in str(info.value)
        assert not Product.objects.exists()
        assert staging_tables() == []

    def test_failing_publish_drops_tables(self) -> None:
        Product.objects.create(name="taken", sku="PT-70", price=1)
        handle = CeleryRuntime().submit_partitioned(load(rows(100)), partitions=2)
        with pytest.raises(DataflowError) as info:
            handle.wait()
        assert "PT-70" in str(info.value)
        assert Product.objects.count() == 1
        assert staging_tables() == []

    @pytest.mark.parametrize(
        ("workflow", "partitions", "message"),
        [
            (build([("ProductListNode", "l", {})]), 2, "BulkCreate"),
            (load(rows(3)), 0, "'partitions'"),
            (build([("ProductBulkCreateNode", "l", {"data": rows(2), "validate": True})]), 2, "full_clean"),
        ],
    )
    def test_refused_up_front(self, workflow: Any, partitions: int, message: str) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            CeleryRuntime().submit_partitioned(workflow, partitions=partitions)
        assert message in str(info.value)
        assert staging_tables() == []


@pytest.fixture(scope="module")
def workers(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[list]:
    """Two one-process workers on this module's queue."""
    require_celery_and_redis()
    name = str(connections["default"].settings_dict["NAME"])
    log_dir: Path = tmp_path_factory.mktemp("partition-workers")
    started = [WorkerProcess(QUEUE, name, log_dir, concurrency=1).start() for _ in range(2)]
    yield started
    for worker in started:
        worker.stop()


@pytest.mark.worker
class TestTwoWorkers:
    @pytest.fixture(autouse=True)
    def through_redis(self) -> Iterator[None]:
        with sending_to(QUEUE):
            yield

    def test_parallel_load_atomic_publish(self, workers: list[WorkerProcess]) -> None:
        result = CeleryRuntime().submit_partitioned(load(rows(2000)), partitions=2).wait(timeout=60)
        assert result["load"] == {"created": 2000}
        assert sorted(p["partition"] for p in result["partitions"]) == [0, 1]
        used = {p["worker"] for p in result["partitions"]}
        print("slices loaded by", sorted(used))
        assert used <= {w.hostname for w in workers}
        assert Product.objects.count() == 2000
        assert Product.objects.get(sku="PT-1999").price == pytest.approx(1999.25)
        assert eventually_no_staging() == []

    def test_failure_in_one_slice_fails_the_job(self, workers: list[WorkerProcess]) -> None:
        data = rows(2000)
        data[1500]["price"] = "oops"  # in the second slice
        handle = CeleryRuntime().submit_partitioned(load(data), partitions=2)
        with pytest.raises(DataflowError) as info:
            handle.wait(timeout=60)
        assert "partition 1" in str(info.value)
        assert "row 1500" in str(info.value)
        assert not Product.objects.exists()
        assert eventually_no_staging() == []  # the first slice's table too, dropped by the errback


def test_slices_are_staged_in_unlogged_tables() -> None:
    from django_dataflow.runtime import partitioned

    job, slices = partitioned.plan(load(rows(10)), 2, None, "default")
    try:
        loaded = partitioned.load_partition(job, 1, slices[1], None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [job.tables[1]])
            assert cursor.fetchone() == ("u",)
        assert loaded == {"partition": 1, "rows": 5}
        assert not Product.objects.exists()  # staged only: nothing published yet
    finally:
        partitioned.drop(job, None)
    assert staging_tables() == []


def test_publish_refuses_a_staging_table_that_lost_rows() -> None:
    from django_dataflow.runtime import partitioned

    job, slices = partitioned.plan(load(rows(10)), 2, None, "default")
    loaded = [partitioned.load_partition(job, i, part, None) for i, part in enumerate(slices)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {job.tables[0]}")  # what crash recovery does to UNLOGGED tables
    with pytest.raises(DataflowError) as info:
        partitioned.publish(job, loaded, None)
    assert "10 rows were staged but 5 remain" in str(info.value)
    assert not Product.objects.exists()
    assert staging_tables() == []


def test_a_node_type_this_process_lacks_is_named() -> None:
    """A worker registering other models than the submitter refuses the job by its node type."""
    from django_dataflow.runtime import partitioned

    job, slices = partitioned.plan(load(rows(4)), 2, None, "default")
    job["node_type"] = "WarehouseBulkCreateNode"
    with pytest.raises(DataflowError, match="'WarehouseBulkCreateNode' is not registered in this process"):
        partitioned.load_partition(job, 0, slices[0], None)
    assert staging_tables() == []
