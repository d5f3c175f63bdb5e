"""List and Count nodes: filter operators, NULL semantics, paths, ordering, paging, projection."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Customer, Order, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def listing(params: dict[str, Any], node_type: str = "ProductListNode", **kwargs: Any) -> dict[str, Any]:
    """Run one List node and return its result."""
    return run([(node_type, "n", params)], **kwargs)["n"]


def skus(params: dict[str, Any]) -> list[str]:
    """The skus a Product List returns, in result order."""
    return [r["sku"] for r in listing(params)["records"]]


def sku_set(spec: dict[str, Any]) -> set[str]:
    """The skus matched by a product filter (also checked against Count)."""
    found = skus({"filter": spec, "limit": 1000})
    count = run([("ProductCountNode", "c", {"filter": spec})])["c"]["count"]
    assert count == len(found)
    return set(found)


def emails(spec: dict[str, Any]) -> set[str]:
    """The emails matched by a customer filter."""
    result = listing({"filter": spec, "limit": 1000}, "CustomerListNode")
    return {r["email"] for r in result["records"]}


def order_refs(spec: dict[str, Any]) -> set[str]:
    """The notes (used as labels) of orders matched by a filter."""
    result = listing({"filter": spec, "limit": 1000}, "OrderListNode")
    return {r["notes"] for r in result["records"]}


def build_error(params: dict[str, Any], node_type: str = "ProductListNode") -> str:
    """The message of the WorkflowValidationError build() raises for one node."""
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "n", params)])
    return str(info.value)


@pytest.fixture
def catalog() -> list[Product]:
    """Five products: prices 5..120, one without description, one with an empty one."""
    rows = [
        ("A", "Apple", "5.00", 10, True, "fruit"),
        ("B", "Banana", "12.50", 0, True, None),
        ("C", "Cherry", "45.00", 3, False, "fruit"),
        ("D", "Desk", "120.00", 1, True, "furniture"),
        ("E", "Eraser", "0.99", 50, False, ""),
    ]
    products = []
    for i, (sku, name, price, stock, active, description) in enumerate(rows):
        p = Product.objects.create(
            sku=sku, name=name, price=price, stock=stock, active=active, description=description
        )
        products.append(p)
        Product.objects.filter(pk=p.pk).update(created_at=T0 + dt.timedelta(days=i))
    return products


@pytest.fixture
def people() -> list[Customer]:
    """Customers with metadata: tier present, JSON null, missing, numeric score, nested."""
    return [
        Customer.objects.create(name="Ada", email="ada@x.io", metadata={"tier": "gold", "score": 9}),
        Customer.objects.create(name="Bob", email="bob@x.io", metadata={"tier": "silver", "score": 3}),
        Customer.objects.create(name="Cy", email="cy@x.io", metadata={"tier": None}),
        Customer.objects.create(name="Di", email="di@x.io", metadata={}),
        Customer.objects.create(
            name="Ed", email="ed@x.io", metadata={"tier": "gold", "address": {"city": "Oslo"}}
        ),
    ]


@pytest.fixture
def orders(catalog: list[Product], people: list[Customer]) -> list[Order]:
    """Orders labelled by their notes; one has no customer."""
    return [
        Order.objects.create(product=catalog[0], customer=people[0], quantity=1, notes="o1"),
        Order.objects.create(product=catalog[1], customer=people[1], quantity=2, notes="o2"),
        Order.objects.create(product=catalog[3], customer=people[4], quantity=3, notes="o3"),
        Order.objects.create(product=catalog[3], customer=None, quantity=4, notes="o4"),
    ]


# Comparison operators ---------------------------------------------------------------------------


class TestComparisonOperators:
    def test_plain_value_is_eq(self, catalog: list[Product]) -> None:
        assert sku_set({"name": "Cherry"}) == {"C"}
        assert sku_set({"name": {"$eq": "Cherry"}}) == {"C"}

    def test_ne(self, catalog: list[Product]) -> None:
        assert sku_set({"name": {"$ne": "Cherry"}}) == {"A", "B", "D", "E"}

    def test_gt_gte_lt_lte_on_decimal(self, catalog: list[Product]) -> None:
        assert sku_set({"price": {"$gt": "12.50"}}) == {"C", "D"}
        assert sku_set({"price": {"$gte": 12.5}}) == {"B", "C", "D"}
        assert sku_set({"price": {"$lt": 5}}) == {"E"}
        assert sku_set({"price": {"$lte": "5"}}) == {"A", "E"}

    def test_range_on_one_field(self, catalog: list[Product]) -> None:
        assert sku_set({"price": {"$gt": 1, "$lt": 100}}) == {"A", "B", "C"}

    def test_in_and_nin(self, catalog: list[Product]) -> None:
        assert sku_set({"sku": {"$in": ["A", "C", "Z"]}}) == {"A", "C"}
        assert sku_set({"sku": {"$nin": ["A", "C", "Z"]}}) == {"B", "D", "E"}

    def test_in_converts_values(self, catalog: list[Product]) -> None:
        assert sku_set({"stock": {"$in": ["0", "3"]}}) == {"B", "C"}

    def test_between_inclusive(self, catalog: list[Product]) -> None:
        assert sku_set({"price": {"$between": ["5", "45"]}}) == {"A", "B", "C"}
        assert sku_set({"stock": {"$between": [1, 3]}}) == {"C", "D"}

    def test_between_on_datetimes(self, catalog: list[Product]) -> None:
        spec = {"created_at": {"$between": ["2024-01-02T00:00:00Z", "2024-01-04T00:00:00+00:00"]}}
        assert sku_set(spec) == {"B", "C", "D"}

    def test_datetime_comparison_with_offset(self, catalog: list[Product]) -> None:
        # 2024-01-03T01:00+02:00 is 2024-01-02T23:00Z: after B (Jan 2), before C (Jan 3).
        assert sku_set({"created_at": {"$gt": "2024-01-03T01:00:00+02:00"}}) == {"C", "D", "E"}

    def test_boolean(self, catalog: list[Product]) -> None:
        assert sku_set({"active": False}) == {"C", "E"}
        assert sku_set({"active": {"$ne": True}}) == {"C", "E"}

    def test_isnull_and_exists_on_column(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$isnull": True}}) == {"B"}
        assert sku_set({"description": {"$isnull": False}}) == {"A", "C", "D", "E"}
        assert sku_set({"description": {"$exists": False}}) == {"B"}
        assert sku_set({"description": {"$exists": True}}) == {"A", "C", "D", "E"}

    def test_pk_and_id(self, catalog: list[Product]) -> None:
        assert sku_set({"pk": catalog[2].pk}) == {"C"}
        assert sku_set({"id": {"$in": [catalog[0].pk, catalog[4].pk]}}) == {"A", "E"}

    def test_several_fields_are_anded(self, catalog: list[Product]) -> None:
        assert sku_set({"active": True, "price": {"$lt": 50}}) == {"A", "B"}

    def test_empty_filter_matches_all(self, catalog: list[Product]) -> None:
        assert sku_set({}) == {"A", "B", "C", "D", "E"}
        assert len(listing({})["records"]) == 5


class TestLogicalOperators:
    def test_and(self, catalog: list[Product]) -> None:
        spec = {"$and": [{"price": {"$gt": 1}}, {"price": {"$lt": 50}}, {"active": True}]}
        assert sku_set(spec) == {"A", "B"}

    def test_or(self, catalog: list[Product]) -> None:
        assert sku_set({"$or": [{"sku": "A"}, {"price": {"$gt": 100}}]}) == {"A", "D"}

    def test_nor(self, catalog: list[Product]) -> None:
        assert sku_set({"$nor": [{"sku": "A"}, {"price": {"$gt": 100}}]}) == {"B", "C", "E"}

    def test_top_level_not(self, catalog: list[Product]) -> None:
        assert sku_set({"$not": {"active": True, "stock": {"$gt": 0}}}) == {"B", "C", "E"}

    def test_field_level_not(self, catalog: list[Product]) -> None:
        assert sku_set({"price": {"$not": {"$gt": 40}}}) == {"A", "B", "E"}

    def test_nested(self, catalog: list[Product]) -> None:
        spec = {
            "$or": [
                {"$and": [{"active": False}, {"price": {"$lt": 1}}]},
                {"$nor": [{"price": {"$lt": 100}}]},
            ]
        }
        assert sku_set(spec) == {"E", "D"}

    def test_logical_mixed_with_fields(self, catalog: list[Product]) -> None:
        assert sku_set({"active": True, "$or": [{"sku": "A"}, {"sku": "C"}]}) == {"A"}

    def test_or_needs_non_empty_list(self) -> None:
        message = build_error({"filter": {"$or": []}})
        assert "$or" in message
        assert "non-empty list" in message

    def test_unknown_top_level_operator(self) -> None:
        message = build_error({"filter": {"$xor": [{"sku": "A"}]}})
        assert "'$xor'" in message
        assert "$and" in message and "$nor" in message and "$or" in message


# NULL semantics -------------------------------------------------------------------------------


class TestNullSemantics:
    def test_null_value_matches_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": None}) == {"B"}
        assert sku_set({"description": {"$eq": None}}) == {"B"}

    def test_empty_string_is_not_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": ""}) == {"E"}

    def test_ne_matches_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$ne": "fruit"}}) == {"B", "D", "E"}

    def test_ne_null_matches_non_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$ne": None}}) == {"A", "C", "D", "E"}

    def test_nin_matches_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$nin": ["fruit", ""]}}) == {"B", "D"}

    def test_not_matches_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$not": {"$eq": "fruit"}}}) == {"B", "D", "E"}
        assert sku_set({"$not": {"description": "fruit"}}) == {"B", "D", "E"}
        assert sku_set({"description": {"$not": {"$in": ["fruit", "furniture"]}}}) == {"B", "E"}

    def test_nor_matches_null(self, catalog: list[Product]) -> None:
        assert sku_set({"$nor": [{"description": "fruit"}]}) == {"B", "D", "E"}

    def test_comparisons_never_match_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$gte": ""}}) == {"A", "C", "D", "E"}
        assert sku_set({"description": {"$lt": "zzz"}}) == {"A", "C", "D", "E"}

    def test_in_with_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$in": ["furniture", None]}}) == {"B", "D"}
        assert sku_set({"description": {"$in": [None]}}) == {"B"}

    def test_nin_with_null_excludes_null(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$nin": ["furniture", None]}}) == {"A", "C", "E"}

    def test_empty_in_matches_nothing(self, catalog: list[Product]) -> None:
        assert sku_set({"sku": {"$in": []}}) == set()

    def test_empty_nin_matches_everything(self, catalog: list[Product]) -> None:
        assert sku_set({"description": {"$nin": []}}) == {"A", "B", "C", "D", "E"}

    def test_comparison_with_null_is_an_error(self) -> None:
        message = build_error({"filter": {"price": {"$gt": None}}})
        assert "$gt" in message
        assert "'price'" in message

    def test_null_through_nullable_fk(self, orders: list[Order]) -> None:
        assert order_refs({"customer": None}) == {"o4"}
        assert order_refs({"customer_id": {"$ne": None}}) == {"o1", "o2", "o3"}
        assert order_refs({"customer.email": {"$ne": "ada@x.io"}}) == {"o2", "o3", "o4"}
        assert order_refs({"customer.email": {"$nin": ["ada@x.io"]}}) == {"o2", "o3", "o4"}


# Dotted paths ---------------------------------------------------------------------------------


class TestPaths:
    def test_through_fk(self, orders: list[Order]) -> None:
        assert order_refs({"customer.email": "bob@x.io"}) == {"o2"}
        assert order_refs({"product.price": {"$gte": 100}}) == {"o3", "o4"}
        assert order_refs({"product.sku": {"$in": ["A", "B"]}}) == {"o1", "o2"}

    def test_fk_by_attname_and_name(self, orders: list[Order], catalog: list[Product]) -> None:
        assert order_refs({"product_id": catalog[3].pk}) == {"o3", "o4"}
        assert order_refs({"product": catalog[3].pk}) == {"o3", "o4"}
        assert order_refs({"product.pk": catalog[3].pk}) == {"o3", "o4"}

    def test_two_hops_into_json(self, orders: list[Order]) -> None:
        assert order_refs({"customer.metadata.tier": "gold"}) == {"o1", "o3"}

    def test_json_key(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": "gold"}) == {"ada@x.io", "ed@x.io"}
        assert emails({"metadata.tier": {"$in": ["silver", "bronze"]}}) == {"bob@x.io"}

    def test_json_numeric_comparison(self, people: list[Customer]) -> None:
        assert emails({"metadata.score": {"$gt": 5}}) == {"ada@x.io"}
        assert emails({"metadata.score": {"$lte": 9}}) == {"ada@x.io", "bob@x.io"}

    def test_nested_json_key(self, people: list[Customer]) -> None:
        assert emails({"metadata.address.city": "Oslo"}) == {"ed@x.io"}

    def test_json_exists_is_key_presence(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$exists": True}}) == {
            "ada@x.io",
            "bob@x.io",
            "cy@x.io",
            "ed@x.io",
        }
        assert emails({"metadata.tier": {"$exists": False}}) == {"di@x.io"}

    def test_json_null_matches_missing_and_json_null(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": None}) == {"cy@x.io", "di@x.io"}

    def test_json_ne_matches_missing(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$ne": "gold"}}) == {"bob@x.io", "cy@x.io", "di@x.io"}

    def test_json_nin_matches_missing(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$nin": ["gold", "silver"]}}) == {"cy@x.io", "di@x.io"}

    def test_json_not_matches_missing(self, people: list[Customer]) -> None:
        assert emails({"metadata.score": {"$not": {"$gt": 5}}}) == {
            "bob@x.io",
            "cy@x.io",
            "di@x.io",
            "ed@x.io",
        }

    def test_json_not_null_matches_present_values(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$not": {"$eq": None}}}) == {"ada@x.io", "bob@x.io", "ed@x.io"}
        assert emails({"metadata.tier": {"$ne": None}}) == {"ada@x.io", "bob@x.io", "ed@x.io"}

    def test_json_in_and_nin_with_null(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$in": ["silver", None]}}) == {"bob@x.io", "cy@x.io", "di@x.io"}
        assert emails({"metadata.tier": {"$nin": ["silver", None]}}) == {"ada@x.io", "ed@x.io"}

    def test_json_between_and_nor(self, people: list[Customer]) -> None:
        assert emails({"metadata.score": {"$between": [1, 5]}}) == {"bob@x.io"}
        assert emails({"$nor": [{"metadata.score": {"$between": [1, 5]}}]}) == {
            "ada@x.io",
            "cy@x.io",
            "di@x.io",
            "ed@x.io",
        }
        assert emails({"$not": {"metadata.tier": "gold"}}) == {"bob@x.io", "cy@x.io", "di@x.io"}

    def test_json_not_exists(self, people: list[Customer]) -> None:
        assert emails({"metadata.tier": {"$not": {"$exists": True}}}) == {"di@x.io"}

    def test_json_negation_through_nullable_relation(self, orders: list[Order]) -> None:
        # o4 has no customer at all: its customer's tier is missing, so $ne matches it.
        assert order_refs({"customer.metadata.tier": {"$ne": "gold"}}) == {"o2", "o4"}
        assert order_refs({"customer.metadata.tier": "gold"}) == {"o1", "o3"}

    def test_json_comparison_never_matches_missing(self, people: list[Customer]) -> None:
        assert emails({"metadata.score": {"$lt": 100}}) == {"ada@x.io", "bob@x.io"}

    def test_whole_json_value(self, people: list[Customer]) -> None:
        assert emails({"metadata": {"tier": None}}) == {"cy@x.io"}

    def test_unknown_relation_field_lists_valid(self) -> None:
        message = build_error({"filter": {"customer.colour": "red"}}, "OrderListNode")
        assert "customer.colour" in message
        assert "email" in message

    def test_path_through_non_relation(self) -> None:
        message = build_error({"filter": {"name.first": "x"}})
        assert "'name'" in message
        assert "not a relation" in message

    def test_reverse_relation_needs_a_field(self) -> None:
        message = build_error({"filter": {"orders": 1}})
        assert "'orders' is a relation" in message
        assert "orders.pk" in message

    def test_reverse_relation_returns_each_record_once(self, orders: list[Order]) -> None:
        # Product D has two orders with quantity >= 3; it is one product.
        spec = {"orders.quantity": {"$gte": 3}}
        result = listing({"filter": spec, "with_total": True, "fields": ["sku"]})
        assert result == {"records": [{"sku": "D"}], "count": 1, "total": 1}
        assert run([("ProductCountNode", "c", {"filter": spec})])["c"] == {"count": 1}
        assert sku_set({"$or": [{"orders.quantity": {"$gte": 1}}, {"sku": "E"}]}) == {"A", "B", "D", "E"}

    def test_reverse_relation_negation(self, orders: list[Order]) -> None:
        # MongoDB's array semantics: $ne matches when no related row equals the value.
        assert sku_set({"orders.quantity": {"$ne": 3}}) == {"A", "B", "C", "E"}

    def test_reverse_relation_two_hops(self, orders: list[Order]) -> None:
        assert emails({"orders.product.sku": "D"}) == {"ed@x.io"}
        people = listing({"filter": {"orders.quantity": {"$gte": 1}}}, "CustomerListNode")
        assert people["count"] == 3

    def test_read_through_reverse_relation(self, orders: list[Order]) -> None:
        record = run([("ProductReadNode", "r", {"conditions": {"orders.quantity": {"$gte": 3}}})])["r"]
        assert record["sku"] == "D"


# Injection and bad names ----------------------------------------------------------------------


class TestRefusedNames:
    @pytest.mark.parametrize(
        ("node", "name"),
        [
            ("ProductListNode", "name; DROP TABLE shop_product"),
            ("OrderListNode", "customer__email"),
            ("ProductListNode", "name__icontains"),
            ("ProductListNode", "price)--"),
            ("ProductListNode", "created_at.year"),
            ("CustomerListNode", "metadata.tier__contains"),
            ("CustomerListNode", "metadata..tier"),
            ("OrderListNode", "customer.email; --"),
        ],
    )
    def test_filter_field_injection_refused(self, node: str, name: str, orders: list[Order]) -> None:
        with pytest.raises(WorkflowValidationError) as info:
            build([(node, "n", {"filter": {name: "x"}})])
        assert name in str(info.value)
        assert Product.objects.count() == 5

    def test_empty_field_name_refused(self) -> None:
        assert "non-empty" in build_error({"filter": {"": "x"}})

    def test_double_underscore_refused_in_order_by_and_fields(self) -> None:
        with pytest.raises(WorkflowValidationError, match="customer__email"):
            build([("OrderListNode", "n", {"order_by": ["customer__email"]})])
        with pytest.raises(WorkflowValidationError, match="customer__email"):
            build([("OrderListNode", "n", {"fields": ["customer__email"]})])
        with pytest.raises(WorkflowValidationError, match="DROP"):
            build([("ProductListNode", "n", {"order_by": {"name; DROP TABLE x": 1}})])

    def test_injection_through_inputs_refused_at_run_time(self, catalog: list[Product]) -> None:
        workflow = build([("ProductListNode", "n", {"filter": "{{f}}"})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"f": {"customer__email": "x"}})
        assert info.value.node_id == "n"
        assert "customer__email" in str(info.value)
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"f": {"name; DROP TABLE shop_product": "x"}})
        assert "DROP TABLE" in str(info.value)
        assert Product.objects.count() == 5

    def test_hostile_values_are_bound_parameters(self, catalog: list[Product]) -> None:
        assert sku_set({"name": "x' OR '1'='1"}) == set()
        assert sku_set({"sku": {"$in": ["A'; DROP TABLE shop_product; --"]}}) == set()
        assert Product.objects.count() == 5

    def test_odd_json_key_is_a_value_not_sql(self, people: list[Customer]) -> None:
        assert emails({"metadata.x') OR 1=1 --": "y"}) == set()
        assert emails({'metadata.ti"er': "gold"}) == set()
        assert Customer.objects.count() == 5

    def test_unknown_field_lists_valid_names(self) -> None:
        message = build_error({"filter": {"colour": "red"}})
        assert "unknown field 'colour'" in message
        for valid in ("sku", "price", "created_at", "orders"):
            assert valid in message

    def test_unknown_operator_lists_valid_operators(self) -> None:
        message = build_error({"filter": {"price": {"$gtx": 1}}})
        assert "'$gtx'" in message
        assert "'price'" in message
        for valid in ("$gt", "$in", "$between", "$exists"):
            assert valid in message

    def test_operators_mixed_with_plain_keys(self) -> None:
        message = build_error({"filter": {"price": {"$gt": 1, "lt": 3}}})
        assert "'price'" in message
        assert "mixes operators" in message

    def test_bad_operand_shapes(self) -> None:
        assert "$in on 'sku' takes a list" in build_error({"filter": {"sku": {"$in": "A"}}})
        assert "$between on 'price'" in build_error({"filter": {"price": {"$between": [1]}}})
        assert "$isnull on 'description'" in build_error({"filter": {"description": {"$isnull": "yes"}}})
        assert "$not on 'price'" in build_error({"filter": {"price": {"$not": 3}}})

    def test_filter_must_be_object(self) -> None:
        assert "must be an object" in build_error({"filter": ["sku", "A"]})

    def test_unconvertible_value_names_field_and_operator(self, catalog: list[Product]) -> None:
        workflow = build([("ProductListNode", "n", {"filter": {"price": {"$gt": "{{p}}"}}})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"p": "cheap"})
        assert "'price'" in str(info.value)
        assert "$gt" in str(info.value)
        assert info.value.node_id == "n"


# order_by, limit, offset ----------------------------------------------------------------------


class TestOrdering:
    def test_list_form(self, catalog: list[Product]) -> None:
        assert skus({"order_by": ["-price"]}) == ["D", "C", "B", "A", "E"]
        assert skus({"order_by": ["active", "-stock"]}) == ["E", "C", "A", "D", "B"]

    def test_plus_prefix_and_single_string(self, catalog: list[Product]) -> None:
        assert skus({"order_by": ["+price"]}) == ["E", "A", "B", "C", "D"]
        assert skus({"order_by": "name"}) == ["A", "B", "C", "D", "E"]

    def test_dict_form(self, catalog: list[Product]) -> None:
        assert skus({"order_by": {"created_at": -1}}) == ["E", "D", "C", "B", "A"]
        assert skus({"order_by": {"active": 1, "price": -1}}) == ["C", "E", "D", "B", "A"]
        assert skus({"order_by": {"price": "desc"}}) == ["D", "C", "B", "A", "E"]

    def test_through_relation(self, orders: list[Order]) -> None:
        result = listing(
            {"order_by": ["-product.price", "customer.email"], "filter": {"customer": {"$ne": None}}},
            "OrderListNode",
        )
        assert [r["notes"] for r in result["records"]] == ["o3", "o2", "o1"]

    def test_default_order_is_primary_key(self, catalog: list[Product]) -> None:
        Product.objects.filter(sku="A").update(name="Zed")
        assert skus({}) == ["A", "B", "C", "D", "E"]

    def test_bad_direction(self) -> None:
        message = build_error({"order_by": {"price": 2}})
        assert "'price'" in message
        assert "1 or -1" in message

    def test_unknown_field(self) -> None:
        message = build_error({"order_by": ["-colour"]})
        assert "colour" in message
        assert "price" in message

    def test_wrong_type(self) -> None:
        assert "order_by" in build_error({"order_by": 5})


class TestPaging:
    def test_limit_and_offset(self, catalog: list[Product]) -> None:
        assert skus({"order_by": ["sku"], "limit": 2}) == ["A", "B"]
        assert skus({"order_by": ["sku"], "limit": 2, "offset": 2}) == ["C", "D"]
        assert skus({"order_by": ["sku"], "limit": 2, "offset": 4}) == ["E"]
        assert skus({"order_by": ["sku"], "offset": 10}) == []

    def test_limit_zero(self, catalog: list[Product]) -> None:
        assert listing({"limit": 0, "with_total": True}) == {"records": [], "count": 0, "total": 5}

    def test_limit_as_input(self, catalog: list[Product]) -> None:
        results, _ = LocalRuntime().execute(
            build([("ProductListNode", "n", {"limit": "{{n}}", "order_by": ["sku"]})]), inputs={"n": 3}
        )
        assert [r["sku"] for r in results["n"]["records"]] == ["A", "B", "C"]

    def test_default_limit_from_settings(self, catalog: list[Product]) -> None:
        with override_settings(DATAFLOW={**settings.DATAFLOW, "DEFAULT_LIMIT": 2}):
            result = listing({"order_by": ["sku"], "with_total": True})
        assert [r["sku"] for r in result["records"]] == ["A", "B"]
        assert result["count"] == 2
        assert result["total"] == 5
        # The override is gone again: the built-in default (100) returns everything.
        assert listing({})["count"] == 5

    def test_limit_above_max_is_build_error(self) -> None:
        with override_settings(DATAFLOW={**settings.DATAFLOW, "MAX_LIMIT": 50, "DEFAULT_LIMIT": 20}):
            message = build_error({"limit": 51})
            build([("ProductListNode", "n", {"limit": 50})])
        assert "'limit'" in message
        assert "MAX_LIMIT" in message
        assert "50" in message

    def test_default_max_limit(self) -> None:
        message = build_error({"limit": 10_001})
        assert "'limit'" in message and "MAX_LIMIT" in message

    def test_limit_above_max_from_input_fails_at_run_time(self, catalog: list[Product]) -> None:
        workflow = build([("ProductListNode", "n", {"limit": "{{n}}"})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"n": 10_001})
        assert info.value.node_id == "n"
        assert "'limit'" in str(info.value)

    @pytest.mark.parametrize("bad", [-1, 2.5, "ten", True])
    def test_bad_limit(self, bad: Any) -> None:
        assert "'limit'" in build_error({"limit": bad})

    def test_negative_offset(self) -> None:
        assert "'offset'" in build_error({"offset": -3})

    def test_one_query_without_total(self, catalog: list[Product]) -> None:
        with CaptureQueriesContext(connection) as queries:
            listing({"filter": {"active": True}, "limit": 2})
        selects = [
            q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")
        ]
        assert len(selects) == 1
        assert "LIMIT" in selects[0].upper()


# Result shape ---------------------------------------------------------------------------------


class TestListResult:
    def test_count_is_number_returned(self, catalog: list[Product]) -> None:
        result = listing({"filter": {"price": {"$gt": 1}}, "limit": 2})
        assert result["count"] == 2
        assert len(result["records"]) == 2
        assert "total" not in result

    def test_with_total_counts_all_matches(self, catalog: list[Product]) -> None:
        result = listing({"filter": {"price": {"$gt": 1}}, "limit": 2, "offset": 1, "with_total": True})
        assert result["count"] == 2
        assert result["total"] == 4
        # 4 matches, offset 1, limit 2: one more row follows, so a cursor comes with the page.
        assert set(result) == {"records", "count", "total", "next_cursor"}

    def test_with_total_false(self, catalog: list[Product]) -> None:
        assert "total" not in listing({"with_total": False})

    def test_with_total_must_be_boolean(self) -> None:
        assert "'with_total'" in build_error({"with_total": "yes"})

    def test_records_shape(self, orders: list[Order], catalog: list[Product]) -> None:
        record = listing({"filter": {"notes": "o1"}}, "OrderListNode")["records"][0]
        assert record["product_id"] == catalog[0].pk
        assert "product" not in record
        assert dt.datetime.fromisoformat(record["placed_at"]).tzinfo is not None
        product = listing({"filter": {"sku": "B"}})["records"][0]
        assert product["price"] == "12.50"
        assert dt.datetime.fromisoformat(product["created_at"]) == T0 + dt.timedelta(days=1)

    def test_records_match_read(self, catalog: list[Product]) -> None:
        listed = listing({"filter": {"sku": "C"}})["records"][0]
        read = run([("ProductReadNode", "r", {"id": catalog[2].pk})])["r"]
        assert listed == read

    def test_fields_projection(self, catalog: list[Product]) -> None:
        result = listing({"fields": ["sku", "price"], "order_by": ["sku"], "limit": 2})
        assert result["records"] == [{"sku": "A", "price": "5.00"}, {"sku": "B", "price": "12.50"}]

    def test_fields_projection_fk_under_attname(self, orders: list[Order]) -> None:
        result = listing({"fields": ["notes", "customer"], "filter": {"notes": "o4"}}, "OrderListNode")
        assert result["records"] == [{"notes": "o4", "customer_id": None}]
        result = listing({"fields": ["product_id"], "filter": {"notes": "o1"}}, "OrderListNode")
        assert list(result["records"][0]) == ["product_id"]

    def test_fields_unknown(self) -> None:
        message = build_error({"fields": ["sku", "colour"]})
        assert "'colour'" in message
        assert "price" in message

    def test_fields_empty(self) -> None:
        assert "fields" in build_error({"fields": []})

    def test_connection_into_list_result(self, catalog: list[Product]) -> None:
        results = run(
            [
                ("ProductListNode", "cheap", {"order_by": ["price"], "limit": 1}),
                ("ProductReadNode", "r", {}),
            ],
            [("cheap", "records.0.id", "r", "id")],
        )
        assert results["r"]["sku"] == "E"

    def test_unknown_param(self) -> None:
        message = build_error({"where": {}})
        assert "unknown param 'where'" in message
        assert "filter" in message and "order_by" in message


# Count ----------------------------------------------------------------------------------------


class TestCount:
    def test_counts_all_matches(self, catalog: list[Product]) -> None:
        assert run([("ProductCountNode", "c", {})])["c"] == {"count": 5}
        assert run([("ProductCountNode", "c", {"filter": {"active": True}})])["c"] == {"count": 3}
        assert run([("ProductCountNode", "c", {"filter": {"sku": "none"}})])["c"] == {"count": 0}

    def test_ignores_default_limit(self, catalog: list[Product]) -> None:
        with override_settings(DATAFLOW={**settings.DATAFLOW, "DEFAULT_LIMIT": 1}):
            assert run([("ProductCountNode", "c", {})])["c"]["count"] == 5

    def test_through_relation(self, orders: list[Order]) -> None:
        spec = {"customer.metadata.tier": "gold", "product.active": True}
        assert run([("OrderCountNode", "c", {"filter": spec})])["c"]["count"] == 2

    def test_one_count_query(self, catalog: list[Product]) -> None:
        with CaptureQueriesContext(connection) as queries:
            run([("ProductCountNode", "c", {"filter": {"price": {"$gt": 1}}})])
        sql = [q["sql"].upper() for q in queries.captured_queries]
        assert len([s for s in sql if "COUNT(" in s]) == 1

    def test_takes_only_filter(self) -> None:
        message = build_error({"filter": {}, "limit": 3}, "ProductCountNode")
        assert "unknown param 'limit'" in message
        assert "filter" in message

    def test_unknown_field(self) -> None:
        message = build_error({"filter": {"colour": 1}}, "ProductCountNode")
        assert "colour" in message and "sku" in message

    def test_count_feeds_a_connection(self, catalog: list[Product]) -> None:
        results = run(
            [
                ("ProductCountNode", "c", {"filter": {"active": False}}),
                ("ProductListNode", "l", {"order_by": ["sku"]}),
            ],
            [("c", "count", "l", "limit")],
        )
        assert [r["sku"] for r in results["l"]["records"]] == ["A", "B"]
