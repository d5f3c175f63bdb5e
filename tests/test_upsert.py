"""BulkUpsert: INSERT ... ON CONFLICT on a unique field and a composite UniqueConstraint."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Product, StockLevel
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

OLD = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def upsert(params: dict[str, Any], node_type: str = "ProductBulkUpsertNode", **kwargs: Any) -> Any:
    """Run one upsert node and return its result."""
    return run([(node_type, "up", params)], **kwargs)["up"]


def fails(nodes: list[tuple], **kwargs: Any) -> NodeExecutionError:
    """Run a workflow that must fail at run time; returns the error."""
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(build(nodes), **kwargs)
    return info.value


def build_error(params: dict[str, Any], node_type: str = "ProductBulkUpsertNode") -> str:
    """The WorkflowValidationError message of build() for one node."""
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "up", params)])
    return str(info.value)


def prices() -> dict[str, Decimal]:
    """sku -> price of every product."""
    return dict(Product.objects.values_list("sku", "price"))


@pytest.fixture
def existing() -> list[Product]:
    """Products E-1 and E-2, last touched long ago."""
    products = [
        Product.objects.create(name="Old one", sku="E-1", price="1.00", stock=1),
        Product.objects.create(name="Old two", sku="E-2", price="2.00", stock=2),
    ]
    Product.objects.update(created_at=OLD, updated_at=OLD)
    return products


@pytest.fixture
def levels(existing: list[Product]) -> list[StockLevel]:
    """Stock of E-1 in warehouses A and B, and of E-2 in A."""
    return [
        StockLevel.objects.create(product=existing[0], warehouse="A", quantity=10),
        StockLevel.objects.create(product=existing[0], warehouse="B", quantity=20),
        StockLevel.objects.create(product=existing[1], warehouse="A", quantity=30),
    ]


def five_rows() -> list[dict[str, Any]]:
    """Two rows for existing skus, three for new ones."""
    return [
        {"sku": "N-1", "name": "New one", "price": "10.00"},
        {"sku": "E-1", "name": "Renamed one", "price": "11.00"},
        {"sku": "N-2", "name": "New two", "price": "12.00"},
        {"sku": "E-2", "name": "Renamed two", "price": "13.00"},
        {"sku": "N-3", "name": "New three", "price": "14.00"},
    ]


class TestUniqueField:
    def test_exact_counts(self, existing: list[Product]) -> None:
        result = upsert({"data": five_rows(), "conflict_on": ["sku"]})
        assert result == {"created": 3, "updated": 2}
        assert Product.objects.count() == 5
        assert prices() == {
            "E-1": Decimal("11.00"),
            "E-2": Decimal("13.00"),
            "N-1": Decimal("10.00"),
            "N-2": Decimal("12.00"),
            "N-3": Decimal("14.00"),
        }
        assert Product.objects.get(sku="E-1").name == "Renamed one"

    def test_existing_rows_keep_their_pk_and_untouched_columns(self, existing: list[Product]) -> None:
        upsert({"data": five_rows(), "conflict_on": ["sku"]})
        e1 = Product.objects.get(sku="E-1")
        assert e1.pk == existing[0].pk
        assert e1.stock == 1  # not in the data, so not updated
        assert e1.created_at == OLD  # auto_now_add is never overwritten
        assert e1.updated_at > OLD  # auto_now is bumped

    def test_new_rows_get_defaults(self, existing: list[Product]) -> None:
        upsert({"data": five_rows(), "conflict_on": ["sku"]})
        n1 = Product.objects.get(sku="N-1")
        assert (n1.stock, n1.active) == (0, True)
        assert abs(n1.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    def test_all_new_and_all_existing(self, existing: list[Product]) -> None:
        rows = [{"sku": f"X-{i}", "name": "x", "price": "1"} for i in range(4)]
        assert upsert({"data": rows, "conflict_on": ["sku"]}) == {"created": 4, "updated": 0}
        again = [{**row, "price": "2"} for row in rows]
        assert upsert({"data": again, "conflict_on": ["sku"]}) == {"created": 0, "updated": 4}
        assert set(Product.objects.filter(sku__startswith="X-").values_list("price", flat=True)) == {
            Decimal("2.00")
        }

    def test_unchanged_values_still_count_as_updated(self, existing: list[Product]) -> None:
        rows = [{"sku": "E-1", "name": "Old one", "price": "1.00"}]
        assert upsert({"data": rows, "conflict_on": ["sku"]}) == {"created": 0, "updated": 1}

    def test_conflict_on_as_string(self, existing: list[Product]) -> None:
        assert upsert({"data": five_rows(), "conflict_on": "sku"}) == {"created": 3, "updated": 2}

    def test_conflict_on_primary_key(self, existing: list[Product]) -> None:
        rows = [
            {"id": existing[0].pk, "sku": "E-1", "name": "By pk", "price": "5"},
            {"id": 987654, "sku": "Z-1", "name": "New by pk", "price": "6"},
        ]
        assert upsert({"data": rows, "conflict_on": ["id"]}) == {"created": 1, "updated": 1}
        assert Product.objects.get(pk=existing[0].pk).name == "By pk"
        assert Product.objects.get(pk=987654).sku == "Z-1"

    def test_batches_keep_exact_counts(self, existing: list[Product]) -> None:
        calls: list[tuple[str, int, int | None]] = []
        workflow = build(
            [("ProductBulkUpsertNode", "up", {"data": five_rows(), "conflict_on": ["sku"], "batch_size": 2})]
        )
        with CaptureQueriesContext(connection) as queries:
            results, _ = LocalRuntime(progress=lambda *a: calls.append(a)).execute(workflow)
        assert results["up"] == {"created": 3, "updated": 2}
        assert calls == [("up", 2, 5), ("up", 4, 5), ("up", 5, 5)]
        upserts = [q for q in queries.captured_queries if "ON CONFLICT" in q["sql"].upper()]
        # PostgreSQL: the chunks are COPied into a staging table and written by one statement.
        assert len(upserts) == (1 if connection.vendor == "postgresql" else 3)

    def test_generator_input(self, existing: list[Product]) -> None:
        result = upsert({"data": iter(five_rows()), "conflict_on": ["sku"], "batch_size": 3})
        assert result == {"created": 3, "updated": 2}

    def test_data_through_inputs(self, existing: list[Product]) -> None:
        workflow = build([("ProductBulkUpsertNode", "up", {"data": "{{rows}}", "conflict_on": ["sku"]})])
        results, _ = LocalRuntime().execute(workflow, inputs={"rows": five_rows()})
        assert results["up"] == {"created": 3, "updated": 2}

    def test_values_are_converted(self, existing: list[Product]) -> None:
        rows = [
            {"sku": 77, "name": 5, "price": 3, "stock": "9"},
            {"sku": "E-1", "name": "x", "price": "3.5", "stock": 4},
        ]
        assert upsert({"data": rows, "conflict_on": ["sku"]}) == {"created": 1, "updated": 1}
        created = Product.objects.get(sku="77")
        assert (created.name, created.price, created.stock) == ("5", Decimal("3.00"), 9)
        assert Product.objects.get(sku="E-1").price == Decimal("3.50")

    def test_empty_data(self, existing: list[Product]) -> None:
        assert upsert({"data": [], "conflict_on": ["sku"]}) == {"created": 0, "updated": 0}


class TestUpdateFields:
    def test_update_fields_limits_changes(self, existing: list[Product]) -> None:
        result = upsert({"data": five_rows(), "conflict_on": ["sku"], "update_fields": ["price"]})
        assert result == {"created": 3, "updated": 2}
        e1 = Product.objects.get(sku="E-1")
        assert e1.price == Decimal("11.00")
        assert e1.name == "Old one"
        # New rows are inserted whole.
        assert Product.objects.get(sku="N-2").name == "New two"

    def test_update_fields_default_is_first_rows_fields(self, existing: list[Product]) -> None:
        rows = [
            {"sku": "E-1", "name": "n1", "price": "5", "stock": 50},
            {"sku": "E-2", "name": "n2", "price": "6", "stock": 60, "active": False},
        ]
        assert upsert({"data": rows, "conflict_on": ["sku"]}) == {"created": 0, "updated": 2}
        e2 = Product.objects.get(sku="E-2")
        assert (e2.name, e2.price, e2.stock) == ("n2", Decimal("6.00"), 60)
        assert e2.active is True  # 'active' is not among the first row's fields

    def test_row_missing_an_update_field_refused(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [
            {"sku": "N-1", "name": "a", "price": "1"},
            {"sku": "E-1", "name": "b"},
        ]
        err = fails([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
        assert err.node_id == "up"
        assert "row 1" in str(err)
        assert "'price'" in str(err)

    def test_row_missing_explicit_update_field_refused(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        rows = [
            {"sku": "E-1", "name": "a", "price": "1", "stock": 3},
            {"sku": "E-2", "name": "b", "price": "2"},
        ]
        params = {"data": rows, "conflict_on": ["sku"], "update_fields": ["stock"]}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        assert "row 1" in str(err)
        assert "'stock'" in str(err)

    def test_unknown_update_field_at_build(self) -> None:
        message = build_error({"data": [], "conflict_on": ["sku"], "update_fields": ["colour"]})
        assert "update_fields" in message
        assert "'colour'" in message
        assert "price" in message

    def test_primary_key_is_refused_in_update_fields(self, existing: list[Product]) -> None:
        message = build_error({"data": [], "conflict_on": ["sku"], "update_fields": ["id"]})
        assert "update_fields" in message
        assert "primary key 'id'" in message
        before = list(Product.objects.values_list("id", "sku").order_by("id"))
        with pytest.raises(WorkflowValidationError):
            upsert({"data": [{"sku": "E-1", "id": 999, "name": "x", "price": "1"}],
                    "conflict_on": ["sku"], "update_fields": ["id"]})
        assert list(Product.objects.values_list("id", "sku").order_by("id")) == before

    def test_update_fields_must_be_a_list(self) -> None:
        message = build_error({"data": [], "conflict_on": ["sku"], "update_fields": "price"})
        assert "'update_fields' must be a list" in message

    def test_empty_update_fields_inserts_only(
        self, levels: list[StockLevel], existing: list[Product]
    ) -> None:
        rows = [
            {"product": existing[0].pk, "warehouse": "A", "quantity": 99},
            {"product": existing[0].pk, "warehouse": "C", "quantity": 5},
        ]
        params = {"data": rows, "conflict_on": ["product", "warehouse"], "update_fields": []}
        result = upsert(params, "StockBulkUpsertNode")
        assert result == {"created": 1, "updated": 0, "unchanged": 1}
        assert StockLevel.objects.get(product=existing[0], warehouse="A").quantity == 10
        assert StockLevel.objects.get(product=existing[0], warehouse="C").quantity == 5

    def test_empty_update_fields_leaves_auto_now_alone(self, existing: list[Product]) -> None:
        rows = [{"sku": "E-1", "name": "x", "price": "9"}, {"sku": "N-1", "name": "y", "price": "1"}]
        result = upsert({"data": rows, "conflict_on": ["sku"], "update_fields": []})
        assert result == {"created": 1, "updated": 0, "unchanged": 1}
        e1 = Product.objects.get(sku="E-1")
        assert (e1.price, e1.updated_at) == (Decimal("1.00"), OLD)


class TestCompositeConstraint:
    def test_exact_counts(self, levels: list[StockLevel], existing: list[Product]) -> None:
        e1, e2 = existing
        rows = [
            {"product": e1.pk, "warehouse": "A", "quantity": 11},  # existing
            {"product": e1.pk, "warehouse": "C", "quantity": 12},  # new warehouse
            {"product": e2.pk, "warehouse": "A", "quantity": 13},  # existing
            {"product": e2.pk, "warehouse": "B", "quantity": 14},  # new
            {"product_id": e2.pk, "warehouse": "C", "quantity": 15},  # new, FK by attname
        ]
        result = upsert({"data": rows, "conflict_on": ["product", "warehouse"]}, "StockBulkUpsertNode")
        assert result == {"created": 3, "updated": 2}
        assert StockLevel.objects.count() == 6
        quantities = {(s.product_id, s.warehouse): s.quantity for s in StockLevel.objects.all()}
        assert quantities == {
            (e1.pk, "A"): 11,
            (e1.pk, "B"): 20,
            (e1.pk, "C"): 12,
            (e2.pk, "A"): 13,
            (e2.pk, "B"): 14,
            (e2.pk, "C"): 15,
        }
        assert StockLevel.objects.get(pk=levels[0].pk).quantity == 11

    def test_conflict_on_by_attname_and_in_any_order(
        self, levels: list[StockLevel], existing: list[Product]
    ) -> None:
        rows = [{"product_id": existing[0].pk, "warehouse": "B", "quantity": 0}]
        result = upsert({"data": rows, "conflict_on": ["warehouse", "product_id"]}, "StockBulkUpsertNode")
        assert result == {"created": 0, "updated": 1}
        assert StockLevel.objects.get(pk=levels[1].pk).quantity == 0

    def test_part_of_a_composite_is_not_enough(self) -> None:
        message = build_error({"data": [], "conflict_on": ["warehouse"]}, "StockBulkUpsertNode")
        assert "conflict_on (warehouse)" in message
        assert "unique" in message
        assert "product, warehouse" in message

    def test_duplicate_composite_key_in_one_batch(self, levels: list[StockLevel], unchanged_db: Any) -> None:
        pk = levels[0].product_id
        rows = [
            {"product": pk, "warehouse": "Z", "quantity": 1},
            {"product": pk, "warehouse": "Y", "quantity": 2},
            {"product": str(pk), "warehouse": "Z", "quantity": 3},
        ]
        err = fails([("StockBulkUpsertNode", "up", {"data": rows, "conflict_on": ["product", "warehouse"]})])
        assert "rows 0 and 2" in str(err)
        assert err.node_id == "up"

    def test_missing_fk_fails_inside_node(self, levels: list[StockLevel], unchanged_db: Any) -> None:
        rows = [{"product": 987654, "warehouse": "A", "quantity": 1}]
        err = fails([("StockBulkUpsertNode", "up", {"data": rows, "conflict_on": ["product", "warehouse"]})])
        assert err.node_id == "up"
        assert "987654" in str(err) or "FOREIGN KEY" in str(err)


class TestConflictOnValidation:
    def test_not_unique_is_build_error(self) -> None:
        message = build_error({"data": [], "conflict_on": ["name"]})
        assert "conflict_on (name)" in message
        assert "not backed by a unique constraint" in message
        assert "sku" in message  # the unique sets are listed

    def test_unknown_field_is_build_error(self) -> None:
        message = build_error({"data": [], "conflict_on": ["colour"]})
        assert "'colour'" in message
        assert "sku" in message

    @pytest.mark.parametrize("bad", [[], None, 5, {"sku": 1}])
    def test_bad_shape(self, bad: Any) -> None:
        assert "'conflict_on'" in build_error({"data": [], "conflict_on": bad})

    def test_conflict_on_required(self) -> None:
        assert "ProductBulkUpsertNode needs 'conflict_on'" in build_error({"data": []})

    def test_data_required(self) -> None:
        assert "ProductBulkUpsertNode needs 'data'" in build_error({"conflict_on": ["sku"]})

    def test_not_unique_from_inputs_fails_at_run_time(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        nodes = [
            ("CustomerCreateNode", "first", {"name": "Ada", "email": "ada@x.io"}),
            ("ProductBulkUpsertNode", "up", {"data": five_rows(), "conflict_on": "{{keys}}"}),
        ]
        build(nodes)  # a placeholder is checked when the run supplies it
        err = fails(nodes, inputs={"keys": ["name"]})
        assert err.node_id == "up"
        assert "conflict_on (name)" in str(err)
        assert "unique" in str(err)
        assert Product.objects.count() == 2

    def test_from_inputs_works_when_unique(self, existing: list[Product]) -> None:
        workflow = build([("ProductBulkUpsertNode", "up", {"data": five_rows(), "conflict_on": "{{keys}}"})])
        results, _ = LocalRuntime().execute(workflow, inputs={"keys": ["sku"]})
        assert results["up"] == {"created": 3, "updated": 2}

    def test_update_fields_from_inputs_checked_at_run_time(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        params = {"data": five_rows(), "conflict_on": ["sku"], "update_fields": "{{fields}}"}
        err = fails([("ProductBulkUpsertNode", "up", params)], inputs={"fields": ["colour"]})
        assert "'colour'" in str(err)


class TestRowChecks:
    def test_duplicate_key_in_one_batch_names_both_rows(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        rows = five_rows()
        rows.append({"sku": "N-2", "name": "again", "price": "1"})
        err = fails([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
        assert err.node_id == "up"
        assert "rows 2 and 5" in str(err)
        assert "N-2" in str(err)

    def test_duplicate_key_in_a_later_batch(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [
            *five_rows(),
            {"sku": "A", "name": "a", "price": "1"},
            {"sku": "A", "name": "b", "price": "1"},
        ]
        params = {"data": rows, "conflict_on": ["sku"], "batch_size": 5}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        # Rows 0-4 were already written by the first batch: the rollback removes them too.
        assert "rows 5 and 6" in str(err)

    def test_duplicate_key_across_batches_refused(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [
            {"sku": "A", "name": "first", "price": "1"},
            {"sku": "B", "name": "b", "price": "1"},
            {"sku": "A", "name": "second", "price": "2"},
        ]
        # One statement writes the whole input on PostgreSQL, and cannot write one row twice:
        # every backend refuses a repeated key, naming both rows, before anything is kept.
        params = {"data": rows, "conflict_on": ["sku"], "batch_size": 2}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        assert "rows 0 and 2" in str(err)
        assert "'A'" in str(err)
        assert err.__cause__.field == "sku"

    def test_duplicate_key_refused_in_insert_only_mode(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        rows = [{"sku": "Q", "name": "a", "price": "1"}, {"sku": "Q", "name": "b", "price": "1"}]
        params = {"data": rows, "conflict_on": ["sku"], "update_fields": [], "batch_size": 1}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        assert "rows 0 and 1" in str(err)

    def test_row_lacking_a_required_column_fails(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [{"sku": "N-9", "name": "no price"}]
        err = fails([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
        assert err.node_id == "up"
        assert "price" in str(err)

    def test_insert_only_by_default_when_rows_hold_only_keys(
        self, levels: list[StockLevel], existing: list[Product]
    ) -> None:
        rows = [{"product": existing[0].pk, "warehouse": "A"}, {"product": existing[1].pk, "warehouse": "Q"}]
        result = upsert({"data": rows, "conflict_on": ["product", "warehouse"]}, "StockBulkUpsertNode")
        assert result == {"created": 1, "updated": 0, "unchanged": 1}
        assert StockLevel.objects.get(pk=levels[0].pk).quantity == 10
        assert StockLevel.objects.get(product=existing[1], warehouse="Q").quantity == 0

    def test_null_conflict_key_refused(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [{"sku": "N-1", "name": "a", "price": "1"}, {"name": "no sku", "price": "1"}]
        err = fails([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
        assert "row 1" in str(err)
        assert "'sku'" in str(err)

    def test_bad_value_names_row_and_field(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = five_rows()
        rows[3]["price"] = "pricey"
        err = fails([("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]})])
        assert "row 3" in str(err)
        assert "'price'" in str(err)

    def test_validate_true_runs_full_clean(self, existing: list[Product], unchanged_db: Any) -> None:
        rows = [{"sku": "N-1", "name": "x" * 300, "price": "1"}]
        params = {"data": rows, "conflict_on": ["sku"], "validate": True}
        err = fails([("ProductBulkUpsertNode", "up", params)])
        assert "row 0" in str(err)
        assert "'name'" in str(err)

    def test_unknown_field_in_static_row(self) -> None:
        message = build_error({"data": [{"sku": "a", "colour": "red"}], "conflict_on": ["sku"]})
        assert "data row 0" in message and "'colour'" in message

    def test_failure_after_other_nodes_rolls_everything_back(
        self, existing: list[Product], unchanged_db: Any
    ) -> None:
        rows = [{"sku": "E-1", "name": "a", "price": "1"}, {"sku": "E-1", "name": "b", "price": "2"}]
        err = fails(
            [
                ("ProductUpdateNode", "touch", {"conditions": {"sku": "E-2"}, "fields": {"stock": 99}}),
                ("ProductBulkUpsertNode", "up", {"data": rows, "conflict_on": ["sku"]}),
            ]
        )
        assert err.node_id == "up"
        assert Product.objects.get(sku="E-2").stock == 2
