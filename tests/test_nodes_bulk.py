"""BulkCreate, BulkUpdate and BulkDelete nodes: inputs, chunking, progress and error paths."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Customer, Order, Product, Shipment, StockLevel
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

OLD = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def product_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Product rows with skus P-<n>, prices as strings."""
    return [
        {"name": f"Item {i}", "sku": f"P-{i}", "price": f"{i}.50", "stock": str(i)}
        for i in range(start, start + count)
    ]


def fails(nodes: list[tuple], connections: list[tuple] = (), **kwargs: Any) -> NodeExecutionError:
    """Run a workflow that must fail at run time; returns the error."""
    workflow = build(nodes, connections)
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime(progress=kwargs.pop("progress", None)).execute(workflow, **kwargs)
    return info.value


def build_error(node_type: str, params: dict[str, Any]) -> str:
    """The WorkflowValidationError message build() gives for one node."""
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "n", params)])
    return str(info.value)


def inserts(queries: CaptureQueriesContext, table: str) -> int:
    """INSERT statements into one table among the captured queries."""
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("INSERT") and table in q["sql"]
    )


@pytest.fixture
def catalog() -> list[Product]:
    """Five saved products P-0..P-4 with an old updated_at."""
    products = [Product.objects.create(**row) for row in product_rows(5)]
    Product.objects.update(updated_at=OLD)
    return products


# BulkCreate -----------------------------------------------------------------------------------


class TestBulkCreate:
    def test_list_input(self) -> None:
        result = run([("ProductBulkCreateNode", "bc", {"data": product_rows(3)})])["bc"]
        assert result == {"created": 3}
        rows = list(Product.objects.order_by("sku").values_list("sku", "price", "stock"))
        assert rows == [
            ("P-0", Decimal("0.50"), 0),
            ("P-1", Decimal("1.50"), 1),
            ("P-2", Decimal("2.50"), 2),
        ]

    def test_defaults_and_auto_now_add_filled(self) -> None:
        run([("ProductBulkCreateNode", "bc", {"data": [{"name": "A", "sku": "A", "price": "1"}]})])
        product = Product.objects.get()
        assert product.stock == 0
        assert product.active is True
        assert abs(product.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    def test_generator_input(self) -> None:
        consumed: list[int] = []

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(7):
                consumed.append(i)
                yield {"name": f"G{i}", "sku": f"G-{i}", "price": "1"}

        result = run([("ProductBulkCreateNode", "bc", {"data": rows(), "batch_size": 3})])["bc"]
        assert result == {"created": 7}
        assert consumed == list(range(7))
        assert Product.objects.filter(sku__startswith="G-").count() == 7

    def test_iterable_from_inputs(self) -> None:
        workflow = build([("ProductBulkCreateNode", "bc", {"data": "{{rows}}"})])
        gen = (row for row in product_rows(4))
        results, _ = LocalRuntime().execute(workflow, inputs={"rows": gen})
        assert results["bc"] == {"created": 4}
        assert Product.objects.count() == 4

    def test_batch_size_chunks_and_progress(self) -> None:
        calls: list[tuple[str, int, int | None]] = []
        workflow = build([("ProductBulkCreateNode", "bc", {"data": product_rows(5), "batch_size": 2})])
        with CaptureQueriesContext(connection) as queries:
            results, _ = LocalRuntime(progress=lambda *a: calls.append(a)).execute(workflow)
        assert results["bc"] == {"created": 5}
        assert calls == [("bc", 2, 5), ("bc", 4, 5), ("bc", 5, 5)]
        if connection.vendor == "postgresql":
            # One COPY streams every chunk (tests/test_bulk_copy.py covers that path).
            copies = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY")]
            assert len(copies) == 1 and "shop_product" in copies[0]
            assert inserts(queries, "shop_product") == 0
        else:
            assert inserts(queries, "shop_product") == 3

    def test_progress_total_unknown_for_generators(self) -> None:
        calls: list[tuple[str, int, int | None]] = []
        workflow = build([("ProductBulkCreateNode", "bc", {"data": iter(product_rows(3)), "batch_size": 2})])
        LocalRuntime(progress=lambda *a: calls.append(a)).execute(workflow)
        assert calls == [("bc", 2, None), ("bc", 3, None)]

    def test_default_batch_size_from_settings(self) -> None:
        calls: list[tuple[str, int, int | None]] = []
        workflow = build([("ProductBulkCreateNode", "bc", {"data": product_rows(5)})])
        with override_settings(DATAFLOW={**settings.DATAFLOW, "BULK_BATCH_SIZE": 4}):
            LocalRuntime(progress=lambda *a: calls.append(a)).execute(workflow)
        assert calls == [("bc", 4, 5), ("bc", 5, 5)]

    def test_empty_data(self) -> None:
        assert run([("ProductBulkCreateNode", "bc", {"data": []})])["bc"] == {"created": 0}
        assert not Product.objects.exists()

    def test_fk_by_name_and_attname(self, catalog: list[Product]) -> None:
        data = [
            {"product": catalog[0].pk, "warehouse": "A", "quantity": "3"},
            {"product_id": str(catalog[1].pk), "warehouse": "A"},
        ]
        assert run([("StockBulkCreateNode", "bc", {"data": data})])["bc"] == {"created": 2}
        assert sorted(StockLevel.objects.values_list("product_id", "quantity")) == [
            (catalog[0].pk, 3),
            (catalog[1].pk, 0),
        ]

    def test_bad_row_names_index_and_field(self, unchanged_db: Any) -> None:
        data = product_rows(5)
        data[3]["price"] = "cheap"
        err = fails([("ProductBulkCreateNode", "bc", {"data": data, "batch_size": 2})])
        assert err.node_id == "bc"
        assert "row 3" in str(err)
        assert "'price'" in str(err)
        assert not Product.objects.exists()

    def test_bad_row_after_committed_chunks_leaves_nothing(self, unchanged_db: Any) -> None:
        calls: list[tuple[str, int, int | None]] = []
        data = product_rows(6)
        data[5]["stock"] = "lots"
        err = fails(
            [("ProductBulkCreateNode", "bc", {"data": data, "batch_size": 2})],
            progress=lambda *a: calls.append(a),
        )
        # Two chunks were written before row 5 failed; the rollback removes them.
        assert calls == [("bc", 2, 6), ("bc", 4, 6)]
        assert "row 5" in str(err) and "'stock'" in str(err)
        assert not Product.objects.exists()

    def test_row_not_an_object(self, unchanged_db: Any) -> None:
        message = build_error("ProductBulkCreateNode", {"data": [{"name": "a", "sku": "a", "price": 1}, 5]})
        assert "data row 1 must be an object" in message
        gen = iter([{"name": "a", "sku": "a", "price": 1}, "oops"])
        err = fails([("ProductBulkCreateNode", "bc", {"data": gen})])
        assert "row 1" in str(err)

    def test_unknown_field_in_static_row_at_build(self) -> None:
        message = build_error("ProductBulkCreateNode", {"data": [{"name": "a"}, {"colour": "red"}]})
        assert "data row 1" in message
        assert "'colour'" in message
        assert "price" in message

    def test_unknown_field_in_generated_row_at_run_time(self, unchanged_db: Any) -> None:
        gen = iter([*product_rows(2), {"name": "x", "sku": "x", "price": 1, "colour": "red"}])
        err = fails([("ProductBulkCreateNode", "bc", {"data": gen})])
        assert "row 2" in str(err)
        assert "'colour'" in str(err)

    def test_validate_runs_full_clean_per_row(self, unchanged_db: Any) -> None:
        data = [{"name": "A", "email": "a@x.io"}, {"name": "B", "email": "not-an-email"}]
        err = fails([("CustomerBulkCreateNode", "bc", {"data": data, "validate": True})])
        assert "row 1" in str(err)
        assert "'email'" in str(err)

    def test_without_validate_rows_are_only_converted(self) -> None:
        data = [{"name": "B", "email": "not-an-email"}]
        assert run([("CustomerBulkCreateNode", "bc", {"data": data})])["bc"] == {"created": 1}
        assert Customer.objects.get().email == "not-an-email"

    def test_unique_violation_rolls_back(self, catalog: list[Product], unchanged_db: Any) -> None:
        data = [*product_rows(2, start=10), {"name": "dup", "sku": "P-1", "price": "1"}]
        err = fails([("ProductBulkCreateNode", "bc", {"data": data})])
        assert err.node_id == "bc"
        assert "sku" in str(err)
        assert Product.objects.count() == 5

    def test_fk_to_missing_row_fails_inside_node(self, catalog: list[Product], unchanged_db: Any) -> None:
        data = [
            {"product_id": catalog[0].pk, "quantity": 1},
            {"product_id": 987654, "quantity": 1},
        ]
        err = fails(
            [
                ("OrderBulkCreateNode", "orders", {"data": data}),
                ("ProductCountNode", "after", {}),
            ]
        )
        assert err.node_id == "orders"
        assert err.node_type == "OrderBulkCreateNode"
        assert "987654" in str(err) or "FOREIGN KEY" in str(err)
        assert not Order.objects.exists()

    def test_needs_data(self) -> None:
        assert "ProductBulkCreateNode needs 'data'" in build_error("ProductBulkCreateNode", {})

    @pytest.mark.parametrize("bad", [0, -2, "x", 1.5])
    def test_bad_batch_size(self, bad: Any) -> None:
        assert "'batch_size'" in build_error("ProductBulkCreateNode", {"data": [], "batch_size": bad})

    @pytest.mark.parametrize("bad", [{"name": "a"}, "rows", 5])
    def test_data_must_be_iterable_of_rows(self, bad: Any, unchanged_db: Any) -> None:
        workflow = build([("ProductBulkCreateNode", "bc", {"data": "{{rows}}"})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"rows": bad})
        assert "'data'" in str(info.value)
        assert info.value.node_id == "bc"


# BulkUpdate -----------------------------------------------------------------------------------


class TestBulkUpdate:
    def test_filter_and_fields(self, catalog: list[Product]) -> None:
        result = run(
            [("ProductBulkUpdateNode", "bu", {"filter": {"stock": {"$gte": 3}}, "fields": {"active": False}})]
        )["bu"]
        assert result == {"updated": 2}
        assert set(Product.objects.filter(active=False).values_list("sku", flat=True)) == {"P-3", "P-4"}

    def test_filter_mode_converts_values_and_bumps_auto_now(self, catalog: list[Product]) -> None:
        run(
            [
                (
                    "ProductBulkUpdateNode",
                    "bu",
                    {"filter": {"sku": "P-0"}, "fields": {"price": "9.99", "stock": "8"}},
                )
            ]
        )
        changed = Product.objects.get(sku="P-0")
        assert (changed.price, changed.stock) == (Decimal("9.99"), 8)
        assert changed.updated_at > OLD
        assert Product.objects.get(sku="P-1").updated_at == OLD

    def test_filter_mode_dates_auto_now_by_the_project_time_zone(self) -> None:
        # 02:00 UTC on the 10th is still the 9th in New York: a DateField(auto_now) gets the
        # project's date, as Django's own save() (date.today() in TIME_ZONE) would write it.
        frozen = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
        shipment = Shipment.objects.create()
        with override_settings(TIME_ZONE="America/New_York"), \
                mock.patch("django.utils.timezone.now", return_value=frozen):
            run([("ShipmentBulkUpdateNode", "bu", {"filter": {"pk": shipment.pk}, "fields": {"notes": "x"}})])
        shipment.refresh_from_db()
        assert (shipment.notes, shipment.updated_at) == ("x", frozen)
        assert shipment.delivered_on == dt.date(2026, 3, 9)

    def test_filter_matching_nothing(self, catalog: list[Product]) -> None:
        result = run([("ProductBulkUpdateNode", "bu", {"filter": {"sku": "none"}, "fields": {"stock": 1}})])
        assert result["bu"] == {"updated": 0}

    def test_filter_through_relation(self, catalog: list[Product]) -> None:
        StockLevel.objects.create(product=catalog[0], warehouse="A", quantity=1)
        StockLevel.objects.create(product=catalog[4], warehouse="A", quantity=1)
        result = run(
            [
                (
                    "StockBulkUpdateNode",
                    "bu",
                    {"filter": {"product.stock": {"$gt": 2}}, "fields": {"quantity": 0}},
                )
            ]
        )
        assert result["bu"] == {"updated": 1}
        assert StockLevel.objects.get(product=catalog[4]).quantity == 0
        assert StockLevel.objects.get(product=catalog[0]).quantity == 1

    def test_empty_filter_refused_without_all(self, catalog: list[Product]) -> None:
        for params in ({"filter": {}, "fields": {"stock": 0}}, {"fields": {"stock": 0}}):
            message = build_error("ProductBulkUpdateNode", params)
            assert "empty filter" in message
            assert '"all": true' in message

    def test_empty_filter_from_inputs_refused_at_run_time(
        self, catalog: list[Product], unchanged_db: Any
    ) -> None:
        workflow = build([("ProductBulkUpdateNode", "bu", {"filter": "{{f}}", "fields": {"stock": 0}})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"f": {}})
        assert info.value.node_id == "bu"
        assert "all" in str(info.value)

    def test_all_true_updates_every_row(self, catalog: list[Product]) -> None:
        result = run([("ProductBulkUpdateNode", "bu", {"all": True, "fields": {"stock": 0}})])
        assert result["bu"] == {"updated": 5}
        assert set(Product.objects.values_list("stock", flat=True)) == {0}

    def test_all_must_be_boolean(self) -> None:
        message = build_error("ProductBulkUpdateNode", {"all": "yes", "fields": {"stock": 0}})
        assert "'all'" in message

    def test_unknown_field_at_build(self) -> None:
        message = build_error("ProductBulkUpdateNode", {"filter": {"sku": "a"}, "fields": {"colour": 1}})
        assert "'colour'" in message
        assert "stock" in message

    def test_unknown_filter_field_at_build(self) -> None:
        message = build_error("ProductBulkUpdateNode", {"filter": {"colour": "a"}, "fields": {"stock": 1}})
        assert "'colour'" in message

    def test_bad_value_names_field(self, catalog: list[Product], unchanged_db: Any) -> None:
        err = fails(
            [("ProductBulkUpdateNode", "bu", {"filter": {"sku": "P-1"}, "fields": {"price": "free"}})]
        )
        assert "price" in str(err)
        assert err.node_id == "bu"

    def test_data_with_pks(self, catalog: list[Product]) -> None:
        data = [
            {"id": catalog[0].pk, "price": "100.00"},
            {"pk": catalog[1].pk, "stock": "42"},
            {"id": str(catalog[2].pk), "price": "7", "name": "Renamed"},
        ]
        result = run([("ProductBulkUpdateNode", "bu", {"data": data})])["bu"]
        assert result == {"updated": 3}
        p0, p1, p2, p3 = (Product.objects.get(pk=p.pk) for p in catalog[:4])
        assert (p0.price, p0.stock, p0.name) == (Decimal("100.00"), 0, "Item 0")
        assert (p1.price, p1.stock) == (Decimal("1.50"), 42)
        assert (p2.price, p2.name) == (Decimal("7.00"), "Renamed")
        assert p0.updated_at > OLD and p1.updated_at > OLD
        assert p3.updated_at == OLD

    def test_data_with_pks_in_chunks(self, catalog: list[Product]) -> None:
        calls: list[tuple[str, int, int | None]] = []
        data = [{"id": p.pk, "stock": 100 + i} for i, p in enumerate(catalog)]
        workflow = build([("ProductBulkUpdateNode", "bu", {"data": data, "batch_size": 2})])
        results, _ = LocalRuntime(progress=lambda *a: calls.append(a)).execute(workflow)
        assert results["bu"] == {"updated": 5}
        assert calls == [("bu", 2, 5), ("bu", 4, 5), ("bu", 5, 5)]
        assert sorted(Product.objects.values_list("stock", flat=True)) == [100, 101, 102, 103, 104]

    def test_data_counts_only_existing_rows(self, catalog: list[Product]) -> None:
        data = [{"id": catalog[0].pk, "stock": 1}, {"id": 987654, "stock": 1}]
        assert run([("ProductBulkUpdateNode", "bu", {"data": data})])["bu"] == {"updated": 1}
        assert not Product.objects.filter(pk=987654).exists()

    def test_data_row_without_pk(self, catalog: list[Product], unchanged_db: Any) -> None:
        data = [{"id": catalog[0].pk, "stock": 1}, {"stock": 2}]
        err = fails([("ProductBulkUpdateNode", "bu", {"data": data})])
        assert "row 1" in str(err)
        assert "primary key" in str(err)

    def test_data_row_without_fields(self, catalog: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductBulkUpdateNode", "bu", {"data": [{"id": catalog[0].pk}]})])
        assert "row 0" in str(err)

    def test_data_bad_value_names_row_and_field(self, catalog: list[Product], unchanged_db: Any) -> None:
        data = [{"id": catalog[0].pk, "stock": 1}, {"id": catalog[1].pk, "stock": "many"}]
        err = fails([("ProductBulkUpdateNode", "bu", {"data": data})])
        assert "row 1" in str(err)
        assert "'stock'" in str(err)

    def test_data_unknown_field_at_build(self) -> None:
        message = build_error("ProductBulkUpdateNode", {"data": [{"id": 1, "colour": "red"}]})
        assert "'colour'" in message
        assert "data row 0" in message

    def test_data_and_filter_together_refused(self) -> None:
        message = build_error(
            "ProductBulkUpdateNode", {"data": [], "filter": {"sku": "a"}, "fields": {"stock": 1}}
        )
        assert "'data' or 'filter' + 'fields'" in message

    def test_needs_fields_or_data(self) -> None:
        message = build_error("ProductBulkUpdateNode", {"filter": {"sku": "a"}})
        assert "needs 'fields'" in message


@pytest.fixture
def stocked(catalog: list[Product]) -> list[StockLevel]:
    """Stock rows: P-0 in A and B, P-1 in A."""
    return [
        StockLevel.objects.create(product=catalog[0], warehouse="A", quantity=1),
        StockLevel.objects.create(product=catalog[0], warehouse="B", quantity=2),
        StockLevel.objects.create(product=catalog[1], warehouse="A", quantity=3),
    ]


class TestBulkUpdateForeignKeys:
    def test_filter_mode_fk_to_missing_row(self, stocked: list[StockLevel], unchanged_db: Any) -> None:
        err = fails(
            [("StockBulkUpdateNode", "bu", {"filter": {"warehouse": "A"}, "fields": {"product_id": 987654}})]
        )
        assert err.node_id == "bu"
        assert StockLevel.objects.filter(product_id=987654).count() == 0

    def test_data_mode_fk_to_missing_row(self, stocked: list[StockLevel], unchanged_db: Any) -> None:
        err = fails([("StockBulkUpdateNode", "bu", {"data": [{"id": stocked[0].pk, "product": 987654}]})])
        assert err.node_id == "bu"

    def test_data_mode_fk_change(self, stocked: list[StockLevel], catalog: list[Product]) -> None:
        data = [{"id": stocked[2].pk, "product": catalog[4].pk}]
        assert run([("StockBulkUpdateNode", "bu", {"data": data})])["bu"] == {"updated": 1}
        assert StockLevel.objects.get(pk=stocked[2].pk).product_id == catalog[4].pk


# BulkDelete -----------------------------------------------------------------------------------


class TestBulkDelete:
    def test_filter(self, catalog: list[Product]) -> None:
        result = run([("ProductBulkDeleteNode", "bd", {"filter": {"stock": {"$lt": 2}}})])["bd"]
        assert result == {"deleted": 2}
        assert set(Product.objects.values_list("sku", flat=True)) == {"P-2", "P-3", "P-4"}

    def test_ids(self, catalog: list[Product]) -> None:
        ids = [catalog[1].pk, str(catalog[3].pk), 987654]
        assert run([("ProductBulkDeleteNode", "bd", {"ids": ids})])["bd"] == {"deleted": 2}
        assert set(Product.objects.values_list("sku", flat=True)) == {"P-0", "P-2", "P-4"}

    def test_ids_from_inputs(self, catalog: list[Product]) -> None:
        workflow = build([("ProductBulkDeleteNode", "bd", {"ids": "{{ids}}"})])
        results, _ = LocalRuntime().execute(workflow, inputs={"ids": [catalog[0].pk, catalog[4].pk]})
        assert results["bd"] == {"deleted": 2}
        assert set(Product.objects.values_list("sku", flat=True)) == {"P-1", "P-2", "P-3"}

    def test_empty_ids_deletes_nothing(self, catalog: list[Product]) -> None:
        assert run([("ProductBulkDeleteNode", "bd", {"ids": []})])["bd"] == {"deleted": 0}
        assert Product.objects.count() == 5

    def test_bad_id_names_ids(self, catalog: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductBulkDeleteNode", "bd", {"ids": [catalog[0].pk, "abc"]})])
        assert "field 'ids" in str(err)
        assert "abc" in str(err)
        err = fails([("ProductBulkDeleteNode", "bd", {"ids": "{{ids}}"})], inputs={"ids": 5})
        assert "'ids' must be a list" in str(err)

    def test_empty_filter_refused_without_all(self, catalog: list[Product]) -> None:
        for params in ({}, {"filter": {}}, {"filter": None}, {"filter": {}, "all": False}):
            message = build_error("ProductBulkDeleteNode", params)
            assert "empty filter" in message
            assert '"all": true' in message

    def test_empty_filter_from_inputs_refused_at_run_time(
        self, catalog: list[Product], unchanged_db: Any
    ) -> None:
        err = fails([("ProductBulkDeleteNode", "bd", {"filter": "{{f}}"})], inputs={"f": {}})
        assert err.node_id == "bd"
        assert "all" in str(err)
        assert Product.objects.count() == 5

    def test_all_true_deletes_every_row(self, catalog: list[Product]) -> None:
        assert run([("ProductBulkDeleteNode", "bd", {"all": True})])["bd"] == {"deleted": 5}
        assert not Product.objects.exists()

    def test_counts_only_this_models_rows(self, stocked: list[StockLevel]) -> None:
        customer = Customer.objects.create(name="Ada", email="ada@x.io")
        result = run([("ProductBulkDeleteNode", "bd", {"filter": {"sku": {"$in": ["P-0", "P-1", "P-2"]}}})])
        # Three products go, and with them (CASCADE) three stock rows that are not counted.
        assert result["bd"] == {"deleted": 3}
        assert not StockLevel.objects.exists()
        assert Customer.objects.get() == customer

    def test_set_null_rows_are_not_counted(self, catalog: list[Product]) -> None:
        ada = Customer.objects.create(name="Ada", email="ada@x.io")
        Customer.objects.create(name="Bob", email="bob@x.io")
        order = Order.objects.create(product=catalog[0], customer=ada, quantity=1)
        assert run([("CustomerBulkDeleteNode", "bd", {"filter": {"name": "Ada"}})])["bd"] == {"deleted": 1}
        order.refresh_from_db()
        assert order.customer_id is None

    def test_filter_through_relation(self, stocked: list[StockLevel]) -> None:
        result = run([("StockBulkDeleteNode", "bd", {"filter": {"product.sku": "P-0"}})])
        assert result["bd"] == {"deleted": 2}
        assert list(StockLevel.objects.values_list("warehouse", flat=True)) == ["A"]

    def test_unknown_filter_field(self) -> None:
        message = build_error("ProductBulkDeleteNode", {"filter": {"colour": "red"}})
        assert "'colour'" in message
        assert "sku" in message


@pytest.fixture
def protected(catalog: list[Product]) -> Order:
    """An order keeping product P-2 (on_delete=PROTECT) from being deleted."""
    return Order.objects.create(product=catalog[2], quantity=1)


def test_bulk_delete_protected_rows_fail_and_roll_back(protected: Order, unchanged_db: Any) -> None:
    err = fails(
        [
            ("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@x.io"}),
            ("ProductBulkDeleteNode", "bd", {"filter": {"stock": {"$gte": 1}}}),
        ]
    )
    assert err.node_id == "bd"
    assert "protected" in str(err).lower()
    assert Product.objects.count() == 5
    assert not Customer.objects.exists()
