"""Create, Read, Update and Delete nodes: params, conversions, record shape and error paths."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import (
    MultipleRecordsFound,
    NodeExecutionError,
    RecordNotFound,
    WorkflowValidationError,
)
from django_dataflow.registry import get_node_class
from shop.models import Customer, Order, Product, StockLevel
from tests.conftest import build, run

pytestmark = pytest.mark.django_db


def run_one(node_type: str, params: dict[str, Any], **kwargs: Any) -> Any:
    """Run a one-node workflow and return that node's result."""
    return run([(node_type, "n", params)], **kwargs)["n"]


def fails(nodes: list[tuple], connections: list[tuple] = (), **kwargs: Any) -> NodeExecutionError:
    """Run a workflow that must fail at run time; returns the error."""
    workflow = build(nodes, connections)
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow, **kwargs)
    return info.value


def parse(value: str) -> dt.datetime:
    """An ISO 8601 string from a record, which must carry its UTC offset."""
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


# Create ---------------------------------------------------------------------------------------


class TestCreateConversion:
    def test_string_to_integer(self) -> None:
        record = run_one("ProductCreateNode", {"name": "Lamp", "sku": "L-1", "price": "1", "stock": "33"})
        assert record["stock"] == 33
        assert Product.objects.get().stock == 33

    def test_string_to_decimal(self) -> None:
        record = run_one("ProductCreateNode", {"name": "Lamp", "sku": "L-1", "price": "19.99"})
        assert Product.objects.get().price == Decimal("19.99")
        assert record["price"] == "19.99"

    def test_decimal_result_has_the_column_scale(self) -> None:
        # The record shows the value as stored (and as Read returns it), not as typed.
        record = run_one("ProductCreateNode", {"name": "Lamp", "sku": "L-1", "price": "3"})
        assert record["price"] == "3.00"
        assert run_one("ProductReadNode", {"id": record["id"]})["price"] == "3.00"

    def test_number_to_charfield_string(self) -> None:
        record = run_one("ProductCreateNode", {"name": 5, "sku": 77, "price": 3})
        assert record["name"] == "5"
        assert record["sku"] == "77"
        product = Product.objects.get()
        assert (product.name, product.sku, product.price) == ("5", "77", Decimal("3"))

    def test_string_to_boolean(self) -> None:
        record = run_one("ProductCreateNode", {"name": "L", "sku": "L-1", "price": "1", "active": "False"})
        assert record["active"] is False
        assert Product.objects.get().active is False

    def test_unconvertible_integer_names_field(self, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "mk", {"name": "L", "sku": "L-1", "price": "1", "stock": "abc"})])
        assert err.node_id == "mk"
        assert "'stock'" in str(err)
        assert "mk" in str(err)

    def test_unconvertible_decimal_names_field(self, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "mk", {"name": "L", "sku": "L-1", "price": "cheap"})])
        assert "'price'" in str(err)
        assert err.node_id == "mk"

    def test_structured_value_for_scalar_field_names_field(self, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "mk", {"name": ["a"], "sku": "L-1", "price": "1"})])
        assert "'name'" in str(err)


class TestCreateValidation:
    def test_full_clean_error_names_field(self, unchanged_db: Any) -> None:
        err = fails([("CustomerCreateNode", "c", {"name": "Ada", "email": "not-an-email"})])
        assert err.node_id == "c"
        assert "field 'email'" in str(err)
        assert "valid email" in str(err)

    def test_full_clean_checks_choices(self, product: Product, unchanged_db: Any) -> None:
        params = {"product_id": product.pk, "quantity": 1, "status": "lost"}
        err = fails([("OrderCreateNode", "o", params)])
        assert "field 'status'" in str(err)

    def test_full_clean_checks_max_length(self, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "p", {"name": "x" * 201, "sku": "S", "price": "1"})])
        assert "field 'name'" in str(err)

    def test_full_clean_checks_decimal_digits(self, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "p", {"name": "L", "sku": "S", "price": "1.999"})])
        assert "field 'price'" in str(err)

    def test_several_bad_fields_all_named(self, unchanged_db: Any) -> None:
        err = fails([("CustomerCreateNode", "c", {"name": "", "email": "nope"})])
        assert "field 'email'" in str(err)
        assert "field 'name'" in str(err)

    def test_validate_false_skips_full_clean(self) -> None:
        record = run_one("CustomerCreateNode", {"name": "Ada", "email": "not-an-email", "validate": False})
        assert record["email"] == "not-an-email"
        assert Customer.objects.get().email == "not-an-email"
        assert "validate" not in record

    def test_validate_true_is_the_default(self, unchanged_db: Any) -> None:
        err = fails([("CustomerCreateNode", "c", {"name": "A", "email": "x", "validate": True})])
        assert "field 'email'" in str(err)

    def test_validate_must_be_boolean(self) -> None:
        with pytest.raises(WorkflowValidationError, match="'validate' must be true or false"):
            build([("CustomerCreateNode", "c", {"name": "A", "email": "a@x.io", "validate": "no"})])

    def test_failure_rolls_back_earlier_nodes(self, unchanged_db: Any) -> None:
        err = fails(
            [
                ("ProductCreateNode", "ok", {"name": "L", "sku": "L-1", "price": "1"}),
                ("CustomerCreateNode", "bad", {"name": "Ada", "email": "nope"}),
            ]
        )
        assert err.node_id == "bad"
        assert not Product.objects.exists()


class TestCreateForeignKeys:
    def test_fk_as_attname(self, product: Product) -> None:
        record = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 2})
        assert record["product_id"] == product.pk
        assert "product" not in record
        assert Order.objects.get().product == product

    def test_fk_as_field_name(self, product: Product) -> None:
        record = run_one("OrderCreateNode", {"product": product.pk, "quantity": 2})
        assert record["product_id"] == product.pk
        assert Order.objects.get().product_id == product.pk

    def test_fk_as_string_pk(self, product: Product) -> None:
        record = run_one("OrderCreateNode", {"product": str(product.pk), "quantity": "2"})
        assert record["product_id"] == product.pk
        assert record["quantity"] == 2

    def test_fk_from_connection(self) -> None:
        results = run(
            [
                ("ProductCreateNode", "p", {"name": "L", "sku": "L-1", "price": "1"}),
                ("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@x.io"}),
                ("OrderCreateNode", "o", {"quantity": 1}),
            ],
            [("p", "id", "o", "product_id"), ("c", "id", "o", "customer")],
        )
        order = Order.objects.get()
        assert order.product_id == results["p"]["id"]
        assert order.customer_id == results["c"]["id"]

    def test_nullable_fk_null(self, product: Product) -> None:
        record = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 1, "customer_id": None})
        assert record["customer_id"] is None

    def test_missing_required_fk_reported_at_build(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("OrderCreateNode", "o", {"quantity": 1})])
        assert "missing required field 'product_id'" in str(info.value)
        assert "'o'" in str(info.value)

    def test_fk_to_missing_row_fails_and_rolls_back(self, unchanged_db: Any) -> None:
        err = fails([("OrderCreateNode", "o", {"product_id": 987654, "quantity": 1})])
        assert err.node_id == "o"
        assert "product" in str(err)


class TestCreateFieldTypes:
    def test_jsonfield_round_trips(self) -> None:
        metadata = {"tier": "gold", "tags": ["a", "b"], "score": 4.5, "nested": {"x": None}}
        record = run_one("CustomerCreateNode", {"name": "Ada", "email": "a@x.io", "metadata": metadata})
        assert record["metadata"] == metadata
        assert Customer.objects.get().metadata == metadata

    def test_datetime_iso_string_with_offset(self, product: Product) -> None:
        record = run_one(
            "OrderCreateNode",
            {"product_id": product.pk, "quantity": 1, "placed_at": "2024-05-01T12:30:00+02:00"},
        )
        expected = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)
        assert parse(record["placed_at"]) == expected
        assert Order.objects.get().placed_at == expected

    def test_datetime_iso_string_zulu(self, product: Product) -> None:
        record = run_one(
            "OrderCreateNode", {"product_id": product.pk, "quantity": 1, "placed_at": "2024-05-01T12:30:00Z"}
        )
        assert parse(record["placed_at"]) == dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)

    def test_naive_iso_string_is_current_timezone(self, product: Product) -> None:
        record = run_one(
            "OrderCreateNode", {"product_id": product.pk, "quantity": 1, "placed_at": "2024-05-01 08:00:00"}
        )
        # TIME_ZONE is UTC in the test project.
        assert parse(record["placed_at"]) == dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)

    def test_aware_datetime_object(self, product: Product) -> None:
        when = dt.datetime(2023, 12, 31, 23, 0, tzinfo=ZoneInfo("America/New_York"))
        record = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 1, "placed_at": when})
        assert parse(record["placed_at"]) == when
        assert Order.objects.get().placed_at == when

    def test_bad_datetime_names_field(self, product: Product, unchanged_db: Any) -> None:
        params = {"product_id": product.pk, "quantity": 1, "placed_at": "yesterday-ish"}
        err = fails([("OrderCreateNode", "o", params)])
        assert "'placed_at'" in str(err)

    def test_defaults_and_auto_now_add_in_result(self) -> None:
        before = dt.datetime.now(dt.UTC)
        record = run_one("ProductCreateNode", {"name": "Lamp", "sku": "L-1", "price": "19.99"})
        after = dt.datetime.now(dt.UTC)
        assert record["stock"] == 0
        assert record["active"] is True
        assert record["description"] is None
        assert before <= parse(record["created_at"]) <= after
        assert before <= parse(record["updated_at"]) <= after
        assert isinstance(record["id"], int)
        assert record["id"] == Product.objects.get().pk

    def test_callable_default_and_json_default(self, product: Product) -> None:
        customer = run_one("CustomerCreateNode", {"name": "Ada", "email": "a@x.io"})
        assert customer["tier"] == "standard"
        assert customer["metadata"] == {}
        order = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 1})
        assert order["status"] == "new"
        assert order["notes"] == ""
        assert order["reference"] is None
        assert abs(parse(order["placed_at"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    def test_auto_now_add_cannot_be_set(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build(
                [
                    (
                        "ProductCreateNode",
                        "p",
                        {"name": "L", "sku": "S", "price": "1", "created_at": "2020-01-01"},
                    )
                ]
            )
        assert "created_at" in str(info.value)
        assert "valid params" in str(info.value)

    def test_record_is_json_safe(self, product: Product) -> None:
        import json

        record = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 1})
        assert json.loads(json.dumps(record)) == record


class TestCreateErrors:
    def test_unique_violation_fails_and_leaves_db(self, product: Product, unchanged_db: Any) -> None:
        err = fails([("ProductCreateNode", "dup", {"name": "Other", "sku": product.sku, "price": "1"})])
        assert err.node_id == "dup"
        assert "sku" in str(err)
        assert err.__cause__ is not None
        assert Product.objects.count() == 1

    def test_unique_violation_rolls_back_whole_run(self, unchanged_db: Any) -> None:
        err = fails(
            [
                ("CustomerCreateNode", "c1", {"name": "A", "email": "same@x.io"}),
                ("ProductCreateNode", "p", {"name": "L", "sku": "L-1", "price": "1"}),
                ("CustomerCreateNode", "c2", {"name": "B", "email": "same@x.io"}),
            ]
        )
        assert err.node_id == "c2"
        assert err.node_type == "CustomerCreateNode"
        assert err.run_id
        assert "email" in str(err)
        assert not Customer.objects.exists()
        assert not Product.objects.exists()

    def test_unknown_field_is_build_error_listing_valid(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("ProductCreateNode", "p", {"name": "L", "sku": "S", "price": "1", "colour": "red"})])
        message = str(info.value)
        assert "unknown param 'colour'" in message
        assert "price" in message and "sku" in message

    def test_missing_required_fields_listed_at_build(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("ProductCreateNode", "p", {"name": "L"})])
        message = str(info.value)
        assert "missing required field 'sku'" in message
        assert "missing required field 'price'" in message
        assert "stock" not in message


class TestExcludedField:
    def test_password_is_not_a_create_param(self) -> None:
        cls = get_node_class("UserCreateNode")
        assert cls is not None
        assert "password" not in cls.param_descriptions()
        assert "username" in cls.param_descriptions()
        with pytest.raises(WorkflowValidationError) as info:
            build([("UserCreateNode", "u", {"username": "ada", "password": "secret"})])
        assert "unknown param 'password'" in str(info.value)

    def test_password_not_in_created_record(self) -> None:
        record = run_one("UserCreateNode", {"username": "ada", "email": "ada@x.io"})
        assert "password" not in record
        assert record["username"] == "ada"
        assert User.objects.get().username == "ada"

    def test_password_not_in_read_or_list(self) -> None:
        user = User.objects.create_user("ada", password="s3cret-hash-me")
        read = run_one("UserReadNode", {"id": user.pk})
        assert read["username"] == "ada"
        assert "password" not in read
        listed = run_one("UserListNode", {})
        assert listed["count"] == 1
        assert all("password" not in r for r in listed["records"])
        updated = run_one("UserUpdateNode", {"id": user.pk, "fields": {"first_name": "Ada"}})
        assert "password" not in updated
        assert updated["first_name"] == "Ada"

    def test_password_not_updatable_nor_filterable(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("UserUpdateNode", "u", {"id": 1, "fields": {"password": "x"}})])
        assert "'password'" in str(info.value)
        with pytest.raises(WorkflowValidationError) as info:
            build([("UserListNode", "l", {"filter": {"password": {"$ne": ""}}})])
        assert "'password'" in str(info.value)
        assert "username" in str(info.value)
        with pytest.raises(WorkflowValidationError):
            build([("UserReadNode", "r", {"conditions": {"password": "x"}})])
        with pytest.raises(WorkflowValidationError):
            build([("UserListNode", "l", {"fields": ["username", "password"]})])
        with pytest.raises(WorkflowValidationError):
            build([("UserListNode", "l", {"order_by": ["password"]})])


# Read -----------------------------------------------------------------------------------------


@pytest.fixture
def products() -> list[Product]:
    return [
        Product.objects.create(name="Lamp", sku="L-1", price="19.99", stock=5),
        Product.objects.create(name="Desk", sku="D-1", price="120.00", stock=5),
        Product.objects.create(name="Chair", sku="C-1", price="45.50", stock=0, active=False),
    ]


class TestRead:
    def test_by_id(self, products: list[Product]) -> None:
        record = run_one("ProductReadNode", {"id": products[1].pk})
        assert record["sku"] == "D-1"
        assert record["id"] == products[1].pk

    def test_by_string_id(self, products: list[Product]) -> None:
        assert run_one("ProductReadNode", {"id": str(products[1].pk)})["sku"] == "D-1"

    def test_by_conditions(self, products: list[Product]) -> None:
        record = run_one("ProductReadNode", {"conditions": {"sku": "C-1"}})
        assert record["id"] == products[2].pk
        record = run_one("ProductReadNode", {"conditions": {"price": {"$gt": 100}}})
        assert record["sku"] == "D-1"

    def test_id_and_conditions_both_hold(self, products: list[Product]) -> None:
        record = run_one("ProductReadNode", {"id": products[0].pk, "conditions": {"stock": 5}})
        assert record["sku"] == "L-1"

    def test_id_and_conditions_disagree_is_not_found(self, products: list[Product]) -> None:
        with pytest.raises(RecordNotFound) as info:
            run_one("ProductReadNode", {"id": products[0].pk, "conditions": {"sku": "D-1"}})
        assert info.value.node_id == "n"
        assert "Product" in str(info.value)
        assert str(products[0].pk) in str(info.value)

    def test_id_from_connection_and_static_conditions(self, products: list[Product]) -> None:
        results = run(
            [
                ("ProductReadNode", "first", {"conditions": {"sku": "L-1"}}),
                ("ProductReadNode", "again", {"conditions": {"active": False}, "required": False}),
            ],
            [("first", "id", "again", "id")],
        )
        assert results["first"]["sku"] == "L-1"
        assert results["again"] is None

    def test_not_required_returns_none(self, products: list[Product]) -> None:
        assert run_one("ProductReadNode", {"id": 987654, "required": False}) is None
        assert run_one("ProductReadNode", {"conditions": {"sku": "nope"}, "required": False}) is None

    def test_not_required_still_returns_found_record(self, products: list[Product]) -> None:
        assert run_one("ProductReadNode", {"id": products[0].pk, "required": False})["sku"] == "L-1"

    def test_required_missing_raises_record_not_found(self, products: list[Product]) -> None:
        with pytest.raises(RecordNotFound) as info:
            run_one("ProductReadNode", {"conditions": {"sku": "nope"}})
        err = info.value
        assert isinstance(err, NodeExecutionError)
        assert err.node_id == "n"
        assert err.node_type == "ProductReadNode"
        assert "nope" in str(err)

    def test_multiple_matches(self, products: list[Product]) -> None:
        with pytest.raises(MultipleRecordsFound) as info:
            run_one("ProductReadNode", {"conditions": {"stock": 5}})
        assert isinstance(info.value, NodeExecutionError)
        assert info.value.node_id == "n"
        assert "more than one Product" in str(info.value)

    def test_multiple_matches_even_when_not_required(self, products: list[Product]) -> None:
        with pytest.raises(MultipleRecordsFound):
            run_one("ProductReadNode", {"conditions": {"stock": 5}, "required": False})

    def test_needs_id_or_conditions(self) -> None:
        with pytest.raises(WorkflowValidationError, match="ProductReadNode needs 'id' or 'conditions'"):
            build([("ProductReadNode", "r", {})])

    def test_required_must_be_boolean(self) -> None:
        with pytest.raises(WorkflowValidationError, match="'required' must be true or false"):
            build([("ProductReadNode", "r", {"id": 1, "required": "yes"})])

    def test_unknown_condition_field_at_build(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("ProductReadNode", "r", {"conditions": {"colour": "red"}})])
        assert "unknown field 'colour'" in str(info.value)
        assert "sku" in str(info.value)

    def test_bad_id_names_id(self) -> None:
        err = fails([("ProductReadNode", "r", {"id": "abc"})])
        assert "field 'id" in str(err)
        assert "abc" in str(err)
        assert err.node_id == "r"

    def test_record_shape(self, product: Product, customer: Customer) -> None:
        order = Order.objects.create(
            product=product,
            customer=customer,
            quantity=3,
            placed_at=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        )
        record = run_one("OrderReadNode", {"id": order.pk})
        assert set(record) == {
            "id",
            "customer_id",
            "product_id",
            "quantity",
            "status",
            "reference",
            "placed_at",
            "notes",
        }
        assert record["product_id"] == product.pk
        assert record["customer_id"] == customer.pk
        assert parse(record["placed_at"]) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

        p = run_one("ProductReadNode", {"id": product.pk})
        assert p["price"] == "19.99"
        assert isinstance(p["price"], str)
        assert parse(p["created_at"]) == Product.objects.get().created_at

        c = run_one("CustomerReadNode", {"id": customer.pk})
        assert c["metadata"] == {"tier": "gold"}

    def test_read_result_matches_create_result(self, product: Product) -> None:
        created = run_one(
            "OrderCreateNode",
            {"product_id": product.pk, "quantity": 1, "placed_at": "2024-05-01T14:30:00.123456+02:00"},
        )
        read = run_one("OrderReadNode", {"id": created["id"]})
        assert read == created
        assert created["placed_at"] == "2024-05-01T12:30:00.123456+00:00"

    def test_update_result_matches_read_result(self, products: list[Product]) -> None:
        updated = run_one(
            "ProductUpdateNode", {"id": products[0].pk, "fields": {"price": "7.5", "stock": "3"}}
        )
        assert updated == run_one("ProductReadNode", {"id": products[0].pk})
        assert updated["price"] == "7.50"

    def test_conditions_through_relation(self, product: Product, customer: Customer) -> None:
        order = Order.objects.create(product=product, customer=customer, quantity=1)
        record = run_one("OrderReadNode", {"conditions": {"customer.email": "ada@example.com"}})
        assert record["id"] == order.pk


# Update ---------------------------------------------------------------------------------------


class TestUpdate:
    def test_fields_by_id(self, products: list[Product]) -> None:
        record = run_one(
            "ProductUpdateNode", {"id": products[0].pk, "fields": {"price": "25.5", "stock": "7"}}
        )
        assert record["price"] == "25.50"
        assert record["stock"] == 7
        assert record["sku"] == "L-1"
        fresh = Product.objects.get(pk=products[0].pk)
        assert (fresh.price, fresh.stock) == (Decimal("25.50"), 7)
        # Other rows are untouched.
        assert Product.objects.get(pk=products[1].pk).price == Decimal("120.00")

    def test_by_conditions(self, products: list[Product]) -> None:
        record = run_one("ProductUpdateNode", {"conditions": {"sku": "C-1"}, "fields": {"active": True}})
        assert record["id"] == products[2].pk
        assert Product.objects.get(pk=products[2].pk).active is True

    def test_only_named_fields_saved(self, products: list[Product]) -> None:
        # Only 'stock' and the auto_now column are written, so concurrent changes to other
        # columns are not overwritten with stale values.
        with CaptureQueriesContext(connection) as queries:
            run_one("ProductUpdateNode", {"id": products[0].pk, "fields": {"stock": 9}})
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert len(updates) == 1
        set_clause = updates[0].split(" WHERE ")[0]
        assert '"stock"' in set_clause and '"updated_at"' in set_clause
        assert '"name"' not in set_clause and '"price"' not in set_clause
        assert Product.objects.get(pk=products[0].pk).stock == 9

    def test_auto_now_bumped(self, products: list[Product]) -> None:
        old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        Product.objects.filter(pk=products[0].pk).update(updated_at=old, created_at=old)
        record = run_one("ProductUpdateNode", {"id": products[0].pk, "fields": {"stock": 1}})
        fresh = Product.objects.get(pk=products[0].pk)
        assert fresh.updated_at > old
        assert abs(fresh.updated_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        assert parse(record["updated_at"]) == fresh.updated_at
        assert fresh.created_at == old
        assert parse(record["created_at"]) == old

    def test_fk_update_by_either_name(self, product: Product, customer: Customer) -> None:
        other = Customer.objects.create(name="Bob", email="bob@x.io")
        order = Order.objects.create(product=product, customer=customer, quantity=1)
        record = run_one("OrderUpdateNode", {"id": order.pk, "fields": {"customer": other.pk}})
        assert record["customer_id"] == other.pk
        record = run_one("OrderUpdateNode", {"id": order.pk, "fields": {"customer_id": None}})
        assert record["customer_id"] is None
        assert Order.objects.get().customer_id is None

    def test_json_update(self, customer: Customer) -> None:
        record = run_one(
            "CustomerUpdateNode", {"id": customer.pk, "fields": {"metadata": {"tier": "silver"}}}
        )
        assert record["metadata"] == {"tier": "silver"}
        assert Customer.objects.get().metadata == {"tier": "silver"}

    def test_id_and_conditions_both_hold(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails(
            [
                (
                    "ProductUpdateNode",
                    "u",
                    {"id": products[0].pk, "conditions": {"sku": "D-1"}, "fields": {"stock": 1}},
                )
            ]
        )
        assert isinstance(err, RecordNotFound)
        assert err.node_id == "u"

    def test_conditions_matching_many(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductUpdateNode", "u", {"conditions": {"stock": 5}, "fields": {"stock": 1}})])
        assert isinstance(err, MultipleRecordsFound)
        assert err.node_id == "u"
        assert "stock" in str(err)

    def test_conditions_matching_none(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductUpdateNode", "u", {"conditions": {"sku": "none"}, "fields": {"stock": 1}})])
        assert isinstance(err, RecordNotFound)
        assert "none" in str(err)

    def test_validation_error_names_field(self, customer: Customer, unchanged_db: Any) -> None:
        err = fails([("CustomerUpdateNode", "u", {"id": customer.pk, "fields": {"email": "broken"}})])
        assert err.node_id == "u"
        assert "'email'" in str(err)

    def test_conversion_error_names_field(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductUpdateNode", "u", {"id": products[0].pk, "fields": {"stock": "many"}})])
        assert "stock" in str(err)
        assert err.node_id == "u"

    def test_validate_false_skips_full_clean(self, customer: Customer) -> None:
        record = run_one(
            "CustomerUpdateNode", {"id": customer.pk, "fields": {"email": "broken"}, "validate": False}
        )
        assert record["email"] == "broken"
        assert Customer.objects.get().email == "broken"

    def test_unchanged_invalid_fields_not_validated(self, customer: Customer) -> None:
        # full_clean checks only the changed fields: an old bad email does not block a rename.
        Customer.objects.filter(pk=customer.pk).update(email="legacy")
        record = run_one("CustomerUpdateNode", {"id": customer.pk, "fields": {"name": "Ada L."}})
        assert record["name"] == "Ada L."

    def test_unique_violation_rolls_back(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails(
            [
                ("ProductUpdateNode", "first", {"id": products[2].pk, "fields": {"stock": 99}}),
                ("ProductUpdateNode", "clash", {"id": products[0].pk, "fields": {"sku": "D-1"}}),
            ]
        )
        assert err.node_id == "clash"
        assert "sku" in str(err)
        assert Product.objects.get(pk=products[2].pk).stock == 0

    def test_unknown_field_in_fields_at_build(self) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([("ProductUpdateNode", "u", {"id": 1, "fields": {"colour": "red"}})])
        message = str(info.value)
        assert "unknown field 'colour'" in message
        assert "'u'" in message
        assert "price" in message and "stock" in message

    def test_needs_fields(self) -> None:
        with pytest.raises(WorkflowValidationError, match="ProductUpdateNode needs 'fields'"):
            build([("ProductUpdateNode", "u", {"id": 1})])

    def test_empty_fields_refused(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductUpdateNode", "u", {"id": products[0].pk, "fields": {}})])
        assert "fields" in str(err)

    def test_fields_must_be_object(self) -> None:
        with pytest.raises(WorkflowValidationError, match="fields must be an object"):
            build([("ProductUpdateNode", "u", {"id": 1, "fields": ["stock"]})])

    def test_fields_from_input(self, products: list[Product]) -> None:
        results, _ = LocalRuntime().execute(
            build([("ProductUpdateNode", "u", {"id": products[0].pk, "fields": "{{changes}}"})]),
            inputs={"changes": {"name": "Lamp 2"}},
        )
        assert results["u"]["name"] == "Lamp 2"

    def test_unknown_field_from_input_at_run_time(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails(
            [("ProductUpdateNode", "u", {"id": products[0].pk, "fields": "{{changes}}"})],
            inputs={"changes": {"colour": "red"}},
        )
        assert "colour" in str(err)
        assert err.node_id == "u"


# Delete ---------------------------------------------------------------------------------------


@pytest.fixture
def protected_order(product: Product) -> Order:
    """An order whose product (on_delete=PROTECT) therefore cannot be deleted."""
    return Order.objects.create(product=product, quantity=1)


class TestDelete:
    def test_by_id(self, products: list[Product]) -> None:
        pk = products[0].pk
        assert run_one("ProductDeleteNode", {"id": pk}) == {"deleted": 1, "id": pk}
        assert not Product.objects.filter(pk=pk).exists()
        assert Product.objects.count() == 2

    def test_by_conditions(self, products: list[Product]) -> None:
        result = run_one("ProductDeleteNode", {"conditions": {"sku": "C-1"}})
        assert result == {"deleted": 1, "id": products[2].pk}
        assert set(Product.objects.values_list("sku", flat=True)) == {"L-1", "D-1"}

    def test_id_and_conditions_both_hold(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductDeleteNode", "d", {"id": products[0].pk, "conditions": {"sku": "C-1"}})])
        assert isinstance(err, RecordNotFound)
        assert err.node_id == "d"

    def test_missing_record(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductDeleteNode", "d", {"id": 987654})])
        assert isinstance(err, RecordNotFound)
        assert "987654" in str(err)

    def test_conditions_matching_many(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductDeleteNode", "d", {"conditions": {"stock": 5}})])
        assert isinstance(err, MultipleRecordsFound)
        assert err.node_id == "d"

    def test_cascade(self, products: list[Product]) -> None:
        StockLevel.objects.create(product=products[0], warehouse="A", quantity=1)
        StockLevel.objects.create(product=products[0], warehouse="B", quantity=2)
        StockLevel.objects.create(product=products[1], warehouse="A", quantity=3)
        result = run_one("ProductDeleteNode", {"id": products[0].pk})
        assert result == {"deleted": 1, "id": products[0].pk}
        assert list(StockLevel.objects.values_list("quantity", flat=True)) == [3]

    def test_set_null(self, product: Product, customer: Customer) -> None:
        order = Order.objects.create(product=product, customer=customer, quantity=1)
        assert run_one("CustomerDeleteNode", {"id": customer.pk})["deleted"] == 1
        order.refresh_from_db()
        assert order.customer_id is None

    def test_protect_becomes_node_error_and_rolls_back(
        self, product: Product, protected_order: Order, unchanged_db: Any
    ) -> None:
        assert unchanged_db["shop.Order"].startswith("1:")
        err = fails(
            [
                ("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@x.io"}),
                ("ProductDeleteNode", "drop", {"id": product.pk}),
            ]
        )
        assert err.node_id == "drop"
        assert err.node_type == "ProductDeleteNode"
        assert "protected" in str(err).lower()
        assert err.__cause__ is not None
        assert Product.objects.filter(pk=product.pk).exists()
        assert not Customer.objects.exists()

    def test_delete_by_connected_id(self, products: list[Product]) -> None:
        results = run(
            [
                ("ProductReadNode", "find", {"conditions": {"sku": "D-1"}}),
                ("ProductDeleteNode", "drop", {}),
            ],
            [("find", "id", "drop", "id")],
        )
        assert results["drop"] == {"deleted": 1, "id": products[1].pk}

    def test_needs_id_or_conditions(self) -> None:
        with pytest.raises(WorkflowValidationError, match="ProductDeleteNode needs 'id' or 'conditions'"):
            build([("ProductDeleteNode", "d", {})])

    def test_empty_conditions_refused(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductDeleteNode", "d", {"conditions": {}})])
        assert "conditions" in str(err)

    def test_null_id_refused(self, products: list[Product], unchanged_db: Any) -> None:
        err = fails([("ProductDeleteNode", "d", {"id": None})])
        assert "id" in str(err)
        assert err.node_id == "d"


# Foreign keys that full_clean did not check ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestUnvalidatedForeignKeys:
    """With validate: false a bad key must fail its own node, not the commit (real commits here)."""

    def test_create_with_missing_fk_fails_in_node(self) -> None:
        product = Product.objects.create(name="L", sku="L-1", price=1)
        err = fails(
            [
                ("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@x.io"}),
                ("OrderCreateNode", "o", {"product_id": 987654, "quantity": 1, "validate": False}),
            ]
        )
        assert err.node_id == "o"
        assert err.node_type == "OrderCreateNode"
        assert "product_id" in str(err) or "FOREIGN KEY" in str(err)
        assert not Order.objects.exists()
        assert not Customer.objects.exists()
        assert Product.objects.get() == product

    def test_update_with_missing_fk_fails_in_node(self) -> None:
        product = Product.objects.create(name="L", sku="L-1", price=1)
        order = Order.objects.create(product=product, quantity=1)
        err = fails(
            [("OrderUpdateNode", "u", {"id": order.pk, "fields": {"product_id": 987654}, "validate": False})]
        )
        assert err.node_id == "u"
        assert Order.objects.get().product_id == product.pk

    def test_create_with_valid_fk_commits(self) -> None:
        product = Product.objects.create(name="L", sku="L-1", price=1)
        record = run_one("OrderCreateNode", {"product_id": product.pk, "quantity": 1, "validate": False})
        assert Order.objects.get().pk == record["id"]
