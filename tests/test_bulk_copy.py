"""The COPY paths of the bulk nodes (PostgreSQL): rows equal to bulk_create's, streaming, errors
naming row, chunk and field, staging-table upserts and updates, and the fallbacks elsewhere."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError, RowRejected
from django_dataflow.nodes.encoding import PASSTHROUGH, copy_refusal
from django_dataflow.nodes.pg_bulk import copy_unavailable
from django_dataflow.nodes.values import InvalidValue
from django_dataflow.registry import get_node_class
from shop.models import Customer, Order, Product, Shipment, StockLevel
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

FROZEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
postgres = pytest.mark.postgres


def fails(nodes: list[tuple], **kwargs: Any) -> NodeExecutionError:
    """Run a workflow that must fail at run time; returns the error."""
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime(progress=kwargs.pop("progress", None)).execute(build(nodes), **kwargs)
    return info.value


def stored(model: type[models.Model], order_by: str) -> list[tuple[Any, ...]]:
    """Every column but the primary key of every row, as the database returns them."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quoted} FROM {connection.ops.quote_name(model._meta.db_table)} "
            f"ORDER BY {connection.ops.quote_name(order_by)}"
        )
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()]


def written_both_ways(
    model: type[models.Model], node_type: str, rows: list[dict[str, Any]], order_by: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(rows the node wrote, rows Django's bulk_create wrote) for the same input, time frozen."""
    node = get_node_class(node_type)
    # Frozen for date.today() too (DateField.pre_save): both writes on one side of a midnight.
    with time_machine.travel(FROZEN, tick=False):
        assert run([(node_type, "bc", {"data": rows})])["bc"] == {"created": len(rows)}
        by_node = stored(model, order_by)
        model.objects.all().delete()
        # The reference: instances from the same converted values, bulk_create.
        model.objects.bulk_create([model(**node.convert_fields(row)) for row in rows])
        by_django = stored(model, order_by)
    return by_node, by_django


@pytest.fixture
def products() -> list[Product]:
    """Two saved products."""
    return [
        Product.objects.create(name="Lamp", sku="L-1", price="19.99"),
        Product.objects.create(name="Desk", sku="D-1", price="120.00"),
    ]


# Every column of COPY-written rows equals bulk_create's -----------------------------------------


@postgres
class TestSameRowsAsBulkCreate:
    def test_product_strings_python_values_defaults_nulls(self) -> None:
        rows = [
            {"name": "Lamp", "sku": "A-1", "price": "19.99", "stock": "3", "active": "false"},
            {"name": "Desk", "sku": "A-2", "price": Decimal("120.5"), "stock": 7, "active": True},
            {"name": 42, "sku": "A-3", "price": 5, "description": None},  # defaults, int -> text
            {"name": "Chair", "sku": "A-4", "price": 12.25, "description": "oak"},  # float price
            {"name": "Shelf", "sku": "A-5", "price": "0.001"},  # rounded to the column's scale
        ]
        by_node, by_django = written_both_ways(Product, "ProductBulkCreateNode", rows, "sku")
        assert by_node == by_django
        assert by_node[0][-2:] == (FROZEN, FROZEN)  # auto_now_add and auto_now

    def test_customer_json_default_and_values(self) -> None:
        rows = [
            {"name": "Ada", "email": "ada@x.io"},  # metadata default=dict, tier default
            {"name": "Bob", "email": "bob@x.io", "metadata": {"a": [1, 2.5, None], "b": {"c": "é"}}},
            {"name": "Cy", "email": "cy@x.io", "metadata": [1, "two"], "tier": "gold"},
            {"name": "Di", "email": "di@x.io", "metadata": "just text"},
        ]
        by_node, by_django = written_both_ways(Customer, "CustomerBulkCreateNode", rows, "email")
        assert by_node == by_django
        assert by_node[0][3] == "{}"  # jsonb as PostgreSQL returns it (Django decodes it later)

    def test_order_nullable_fk_enum_aware_and_naive_datetimes(self, products: list[Product]) -> None:
        ada = Customer.objects.create(name="Ada", email="ada@x.io")
        rows = [
            {"product": products[0].pk, "customer": ada.pk, "quantity": 2, "status": Order.Status.PAID,
             "reference": "R-1", "placed_at": "2024-01-02T03:04:05+02:00"},
            {"product_id": str(products[1].pk), "customer_id": None, "quantity": "1",
             "placed_at": dt.datetime(2024, 1, 2, 3, 4, 5), "notes": "naive: made aware in UTC"},
            {"product": products[0].pk, "quantity": 3, "status": "shipped", "reference": None,
             "placed_at": dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))},
        ]
        by_node, by_django = written_both_ways(Order, "OrderBulkCreateNode", rows, "quantity")
        assert by_node == by_django
        assert by_node[0][3] == "shipped" or by_node[1][3] == "paid"

    def test_stock_level(self, products: list[Product]) -> None:
        rows = [{"product": products[0].pk, "warehouse": "A"}, {"product": products[1].pk, "warehouse": "B",
                                                                  "quantity": "-4"}]
        by_node, by_django = written_both_ways(StockLevel, "StockBulkCreateNode", rows, "warehouse")
        assert by_node == by_django

    def test_shipment_every_field_type(self, products: list[Product]) -> None:
        order = Order.objects.create(product=products[0], quantity=1)
        full = {
            "tracking": "6f1c3a7e-2b1d-4c5e-9f00-123456789abc",
            "order": order.pk,
            "carrier": Shipment.Carrier.FREIGHT,
            "priority": Shipment.Priority.HIGH,
            "weight_grams": 2**40,
            "parcels": "-3",
            "volume": 0.125,
            "insured_value": "1234.5678",
            "fragile": "yes",
            "ship_date": "2024-02-29",
            "pickup_time": "13:45:30.5",
            "transit": "1 02:03:04",
            "scheduled_at": "2024-03-01T10:00:00Z",
            "label": "fast-lane",
            "tracking_url": "https://example.com/t/1",
            "contact": "ops@example.com",
            "origin_ip": "2001:db8::1",
            "manifest": [{"sku": "L-1", "qty": 2}],
            "customs": {"hs": "9405", "value": "12.50"},
            "signature": b"\x00\x01binary\xff",
            "notes": "all set",
        }
        python_values = {
            "tracking": uuid.UUID("00000000-0000-4000-8000-000000000002"),
            "carrier": 2,
            "insured_value": Decimal("-0.001"),
            "fragile": False,
            "ship_date": dt.date(2024, 1, 1),
            "pickup_time": dt.time(0, 0),
            "transit": dt.timedelta(microseconds=1),
            "scheduled_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            "origin_ip": "192.0.2.7",
            "manifest": [],
            "customs": None,
            "signature": memoryview(b"mv"),
        }
        nulls = {"tracking": "00000000-0000-4000-8000-000000000003", "volume": None, "insured_value": None,
                 "fragile": None, "ship_date": None, "transit": None, "origin_ip": None, "signature": None}
        defaults = {"tracking": "00000000-0000-4000-8000-000000000004"}  # every other field defaults
        rows = [full, python_values, nulls, defaults]
        by_node, by_django = written_both_ways(Shipment, "ShipmentBulkCreateNode", rows, "tracking")
        assert by_node == by_django
        assert len(by_node) == 4
        columns = [f.name for f in Shipment._meta.concrete_fields if not f.primary_key]
        typed = next(
            dict(zip(columns, row, strict=True)) for row in by_node if row[0] == python_values["tracking"]
        )
        assert typed["insured_value"] == Decimal("-0.001")
        assert typed["delivered_on"] == timezone.localdate(FROZEN)  # DateField.pre_save: date.today()
        assert typed["signature"] == b"mv"

    def test_callable_defaults_called_per_row(self, products: list[Product]) -> None:
        rows = [{"product": products[0].pk, "quantity": 1}] * 3
        run([("OrderBulkCreateNode", "bc", {"data": rows})])
        placed = list(Order.objects.values_list("placed_at", flat=True))
        assert all(abs(p - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1) for p in placed)
        run([("ShipmentBulkCreateNode", "s", {"data": [{}, {}, {"notes": "x"}]})])
        trackings = set(Shipment.objects.values_list("tracking", flat=True))
        assert len(trackings) == 3  # uuid4 once per row, as Model.__init__ does
        assert list(Shipment.objects.values_list("manifest", flat=True)) == [[], [], []]

    def test_one_copy_statement_and_no_insert(self) -> None:
        rows = [{"name": f"n{i}", "sku": f"s{i}", "price": "1"} for i in range(25)]
        with CaptureQueriesContext(connection) as queries:
            run([("ProductBulkCreateNode", "bc", {"data": rows, "batch_size": 10})])
        statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
        assert statements.count("COPY") == 1
        assert "INSERT" not in statements
        assert Product.objects.count() == 25

    def test_explicit_primary_keys(self) -> None:
        rows = [
            {"id": 1001, "name": "a", "sku": "a", "price": 1},
            {"id": 1002, "name": "b", "sku": "b", "price": 2},
        ]
        run([("ProductBulkCreateNode", "bc", {"data": rows})])
        assert sorted(Product.objects.values_list("pk", flat=True)) == [1001, 1002]

    def test_primary_key_on_some_rows_only(self, unchanged_db: Any) -> None:
        rows = [{"name": "a", "sku": "a", "price": 1}, {"id": 7, "name": "b", "sku": "b", "price": 2}]
        err = fails([("ProductBulkCreateNode", "bc", {"data": rows})])
        assert "row 1 (chunk 1)" in str(err)
        assert "primary key" in str(err)


def test_passthrough_types_are_identities() -> None:
    """Each value class that skips to_python/get_db_prep_save gets back an equal value of its type."""
    samples = {str: "text", int: 7, bool: True, float: 2.5}
    for field_class, kind in PASSTHROUGH.items():
        kwargs = {"max_length": 10} if issubclass(field_class, models.CharField) else {}
        if issubclass(field_class, models.AutoField):
            kwargs["primary_key"] = True
        field = field_class(**kwargs)
        value = samples[kind]
        prepared = field.get_db_prep_save(field.to_python(value), connection=connection)
        assert prepared == value and isinstance(prepared, kind), field_class


# Streaming, progress, chunks ------------------------------------------------------------------


@postgres
class TestStreaming:
    def test_generator_is_consumed_while_copying(self) -> None:
        progress: list[int] = []
        seen_at: list[int] = []

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(50):
                seen_at.append(len(progress))  # chunks reported before this row was produced
                yield {"name": f"g{i}", "sku": f"g{i}", "price": "1"}

        workflow = build([("ProductBulkCreateNode", "bc", {"data": rows(), "batch_size": 10})])
        LocalRuntime(progress=lambda node, done, total: progress.append(done)).execute(workflow)
        assert progress == [10, 20, 30, 40, 50]
        assert seen_at[0] == 0 and seen_at[49] == 4  # never read ahead of the chunk being written
        assert Product.objects.count() == 50

    def test_bad_value_in_chunk_37_names_row_chunk_field(self, unchanged_db: Any) -> None:
        progress: list[int] = []

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(500):
                yield {"name": f"g{i}", "sku": f"g{i}", "price": "oops" if i == 365 else "1"}

        err = fails(
            [("ProductBulkCreateNode", "bc", {"data": rows(), "batch_size": 10})],
            progress=lambda node, done, total: progress.append(done),
        )
        assert "row 365 (chunk 37)" in str(err)
        assert "'price'" in str(err)
        assert progress[-1] == 360
        assert not Product.objects.exists()

    def test_text_too_long_is_refused_before_copy(self, unchanged_db: Any) -> None:
        rows = [{"name": f"g{i}", "sku": f"g{i}", "price": "1"} for i in range(40)]
        rows[23]["name"] = "x" * 201  # longer than max_length: refused by the encoder, before COPY sends it
        err = fails([("ProductBulkCreateNode", "bc", {"data": rows, "batch_size": 10})])
        assert isinstance(err.__cause__, InvalidValue)
        assert "row 23 (chunk 3): field 'name'" in str(err)
        assert "at most 200 characters" in str(err)

    def test_not_null_column_named(self, unchanged_db: Any) -> None:
        rows = [{"name": "a", "sku": "a", "price": "1"}, {"name": "b", "sku": "b"}]
        err = fails([("ProductBulkCreateNode", "bc", {"data": rows})])
        assert "row 1 (chunk 1): field 'price'" in str(err)
        assert "null" in str(err)

    def test_unique_violation_names_row_and_key(self, products: list[Product], unchanged_db: Any) -> None:
        rows = [{"name": f"g{i}", "sku": f"g{i}", "price": "1"} for i in range(5)]
        rows[4]["sku"] = "L-1"
        err = fails([("ProductBulkCreateNode", "bc", {"data": rows, "batch_size": 2})])
        cause = err.__cause__
        assert isinstance(cause, RowRejected)  # only the database can know this one
        assert (cause.row, cause.chunk, cause.field) == (4, 3, "sku")
        assert "row 4 (chunk 3): field 'sku'" in str(err)
        assert "L-1" in str(err)

    def test_missing_foreign_key_fails_inside_node(self, unchanged_db: Any) -> None:
        err = fails([("StockBulkCreateNode", "bc", {"data": [{"product": 987654, "warehouse": "A"}]})])
        assert err.node_id == "bc"
        assert "987654" in str(err)


# BulkUpsert through a staging table ----------------------------------------------------------------


@postgres
class TestUpsertStaging:
    def test_one_statement_exact_counts(self, products: list[Product]) -> None:
        rows = [{"sku": "L-1", "name": "Lamp 2", "price": "21"}, *[
            {"sku": f"N-{i}", "name": f"new {i}", "price": i} for i in range(7)
        ]]
        with CaptureQueriesContext(connection) as queries:
            params = {"data": rows, "conflict_on": ["sku"], "batch_size": 3}
            result = run([("ProductBulkUpsertNode", "up", params)])
        assert result["up"] == {"created": 7, "updated": 1}
        sql = [q["sql"] for q in queries.captured_queries]
        assert sum("ON CONFLICT" in s for s in sql) == 1
        assert sum(s.startswith("COPY") for s in sql) == 1
        assert Product.objects.get(sku="L-1").price == Decimal("21.00")
        assert Product.objects.get(sku="D-1").price == Decimal("120.00")

    def test_staging_table_is_dropped(self, products: list[Product]) -> None:
        run([("ProductBulkUpsertNode", "up", {"data": [{"sku": "L-1", "name": "x", "price": 1}],
                                               "conflict_on": ["sku"]})])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'dataflow_stage_%%'")
            assert cursor.fetchone()[0] == 0

    def test_null_in_final_insert_names_row(self, products: list[Product], unchanged_db: Any) -> None:
        rows = [{"sku": f"N-{i}", "name": "n", "price": 1} for i in range(6)]
        rows[4]["price"] = None
        params = {"data": rows, "conflict_on": ["sku"], "batch_size": 4}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        assert "row 4 (chunk 2): field 'price'" in str(err)

    def test_not_unique_conflict_on_writes_nothing(self, products: list[Product], unchanged_db: Any) -> None:
        workflow = build([("ProductBulkUpsertNode", "up", {"data": "{{rows}}", "conflict_on": "{{keys}}"})])
        with CaptureQueriesContext(connection) as queries, pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"rows": [{"name": "x"}], "keys": ["name"]})
        assert "not backed by a unique constraint" in str(info.value)
        assert not any("COPY" in q["sql"] or "CREATE" in q["sql"] for q in queries.captured_queries)

    def test_same_rows_as_bulk_create_update_conflicts(self, products: list[Product]) -> None:
        rows = [{"sku": "L-1", "name": "Lamp v2", "price": "1.5", "stock": 4},
                {"sku": "Z-1", "name": "Zed", "price": "2", "stock": 5}]
        node = get_node_class("ProductBulkUpsertNode")
        with mock.patch("django.utils.timezone.now", return_value=FROZEN):
            run([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
            by_node = stored(Product, "sku")
            Product.objects.filter(sku="Z-1").delete()
            Product.objects.filter(sku="L-1").update(name="Lamp", price="19.99", stock=0)
            Product.objects.bulk_create(
                [Product(**node.convert_fields(r)) for r in rows], update_conflicts=True,
                unique_fields=["sku"], update_fields=["name", "price", "stock", "updated_at"],
            )
            by_django = stored(Product, "sku")
        assert by_node == by_django


# BulkUpdate through a staging table ----------------------------------------------------------------


@postgres
class TestUpdateStaging:
    def test_rows_with_different_fields(self, products: list[Product]) -> None:
        lamp, desk = products
        data = [{"id": lamp.pk, "price": "1.25"}, {"pk": desk.pk, "stock": 9, "description": None},
                {"id": 987654, "stock": 1}]
        with CaptureQueriesContext(connection) as queries:
            result = run([("ProductBulkUpdateNode", "bu", {"data": data})])
        assert result["bu"] == {"updated": 2}  # the missing pk matches nothing, as bulk_update
        assert sum(q["sql"].startswith("UPDATE") for q in queries.captured_queries) == 1
        lamp.refresh_from_db()
        desk.refresh_from_db()
        assert (lamp.price, lamp.stock, lamp.name) == (Decimal("1.25"), 0, "Lamp")
        assert (desk.price, desk.stock, desk.description) == (Decimal("120.00"), 9, None)
        assert lamp.updated_at > lamp.created_at

    def test_null_into_not_null_column_names_row(self, products: list[Product], unchanged_db: Any) -> None:
        data = [{"id": products[0].pk, "price": 3}, {"id": products[1].pk, "price": None}]
        err = fails([("ProductBulkUpdateNode", "bu", {"data": data})])
        assert "row 1 (chunk 1): field 'price'" in str(err)

    def test_bad_value_names_row(self, products: list[Product], unchanged_db: Any) -> None:
        data = [{"id": products[0].pk, "price": 3}, {"id": products[1].pk, "stock": "many"}]
        err = fails([("ProductBulkUpdateNode", "bu", {"data": data, "batch_size": 1})])
        assert "row 1 (chunk 2)" in str(err) and "'stock'" in str(err)

    def test_row_without_pk_or_fields(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductBulkUpdateNode", "bu", {"data": [{"stock": 1}]})])
        assert "row 0 (chunk 1): needs its primary key 'id'" in str(err)
        err = fails([("ProductBulkUpdateNode", "bu", {"data": [{"id": products[0].pk}]})])
        assert "names no field to update" in str(err)


class TestDuplicatesOnEveryBackend:
    def test_update_same_pk_twice_refused(self, products: list[Product], unchanged_db: Any) -> None:
        data = [{"id": products[0].pk, "stock": 1}, {"id": products[1].pk, "stock": 2},
                {"id": products[0].pk, "stock": 3}]
        err = fails([("ProductBulkUpdateNode", "bu", {"data": data, "batch_size": 2})])
        assert "rows 0 and 2" in str(err)
        assert err.__cause__.field == "id"


# BulkDelete by ids -------------------------------------------------------------------------------


class TestDeleteIds:
    def test_any_array_when_nothing_cascades(self, products: list[Product]) -> None:
        shipments = [Shipment.objects.create() for _ in range(3)]
        ids = [shipments[0].pk, str(shipments[2].pk), 987654]
        with CaptureQueriesContext(connection) as queries:
            result = run([("ShipmentBulkDeleteNode", "bd", {"ids": ids})])
        assert result["bd"] == {"deleted": 2}
        assert list(Shipment.objects.values_list("pk", flat=True)) == [shipments[1].pk]
        deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
        assert len(deletes) == 1
        assert ("= ANY(" in deletes[0]) == (connection.vendor == "postgresql")

    def test_orm_when_rows_cascade(self, products: list[Product]) -> None:
        StockLevel.objects.create(product=products[0], warehouse="A")
        result = run([("ProductBulkDeleteNode", "bd", {"ids": [products[0].pk]})])
        assert result["bd"] == {"deleted": 1}
        assert not StockLevel.objects.exists()


# When COPY is not used, and why ---------------------------------------------------------------------


def test_fallback_reasons() -> None:
    node = get_node_class("ProductBulkCreateNode")
    reason = copy_unavailable(node, "default")
    if connection.vendor == "postgresql":
        assert reason is None
        assert "full_clean" in copy_unavailable(node, "default", validate=True)
    else:
        assert "PostgreSQL" in reason


@isolate_apps("shop")
def test_copy_refused_for_models_a_copy_cannot_write() -> None:
    class Upload(models.Model):
        file = models.FileField()

        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return "test model"

    class Base(models.Model):
        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return "test model"

    class Child(Base):
        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return "test model"

    class Counted(models.Model):
        hits = models.IntegerField(db_default=0)

        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return "test model"

    assert "pre_save" in copy_refusal(Upload)
    assert "inheritance" in copy_refusal(Child)
    assert "db_default" in copy_refusal(Counted)
    assert copy_refusal(Base) is None
