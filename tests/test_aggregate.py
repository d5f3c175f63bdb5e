"""Aggregate nodes: a MongoDB-style pipeline answered by one SQL query, in MongoDB's result shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_dataflow import LocalRuntime, QueryBuilder
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Customer, Order, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite behaviour")


def aggregate(pipeline: Any, node_type: str = "OrderAggregateNode") -> list[dict[str, Any]]:
    """Run one Aggregate node and return its results, checking it took exactly one query."""
    with CaptureQueriesContext(connection) as queries:
        result = run([(node_type, "a", {"pipeline": pipeline})])["a"]
    assert set(result) == {"results"}
    # Inside the test's transaction the run takes a savepoint; the work is one query.
    work = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(work) == 1, work
    return result["results"]


def build_error(pipeline: Any, node_type: str = "OrderAggregateNode") -> str:
    """The WorkflowValidationError message build() gives for a pipeline."""
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "a", {"pipeline": pipeline})])
    return str(info.value)


def by_id(results: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {r["_id"]: r for r in results}


@pytest.fixture
def sales() -> dict[str, Any]:
    """Three customers, four products (one never ordered) and six orders, one without customer."""
    ada = Customer.objects.create(
        name="Ada", email="ada@x.io", tier="gold", metadata={"region": "n", "score": 3}
    )
    bob = Customer.objects.create(name="Bob", email="bob@x.io", tier="silver", metadata={"region": "s"})
    cy = Customer.objects.create(name="Cy", email="cy@x.io", tier="gold", metadata={})
    lamp = Product.objects.create(name="Lamp", sku="L", price="19.99", stock=5)
    desk = Product.objects.create(name="Desk", sku="D", price="120.00", stock=0)
    pen = Product.objects.create(name="Pen", sku="P", price="0.50", stock=100, active=False)
    Product.objects.create(name="Free", sku="F", price="0.00", stock=1)
    rows = [
        ("o1", ada, lamp, 2, "paid"),
        ("o2", ada, desk, 1, "paid"),
        ("o3", bob, lamp, 5, "new"),
        ("o4", bob, pen, 10, "shipped"),
        ("o5", None, pen, 3, "paid"),
        ("o6", cy, lamp, 1, "new"),
    ]
    for notes, customer, product, quantity, status in rows:
        Order.objects.create(
            notes=notes, customer=customer, product=product, quantity=quantity, status=status
        )
    return {"ada": ada, "bob": bob, "cy": cy, "lamp": lamp, "desk": desk, "pen": pen}


# $group ------------------------------------------------------------------------------------------


class TestGroup:
    def test_accumulators_by_field(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [
                {
                    "$group": {
                        "_id": "$status",
                        "orders": {"$sum": 1},
                        "units": {"$sum": "$quantity"},
                        "mean": {"$avg": "$quantity"},
                        "least": {"$min": "$quantity"},
                        "most": {"$max": "$quantity"},
                        "n": {"$count": {}},
                    }
                },
                {"$sort": {"_id": 1}},
            ]
        )
        assert results == [
            {"_id": "new", "orders": 2, "units": 6, "mean": 3.0, "least": 1, "most": 5, "n": 2},
            {"_id": "paid", "orders": 3, "units": 6, "mean": 2.0, "least": 1, "most": 3, "n": 3},
            {"_id": "shipped", "orders": 1, "units": 10, "mean": 10.0, "least": 10, "most": 10, "n": 1},
        ]

    def test_numbers_stay_numbers(self, sales: dict[str, Any]) -> None:
        (row,) = aggregate(
            [{"$group": {"_id": None, "u": {"$sum": "$quantity"}, "a": {"$avg": "$quantity"}}}]
        )
        assert row == {"_id": None, "u": 22, "a": pytest.approx(22 / 6)}
        assert type(row["u"]) is int and type(row["a"]) is float

    def test_sum_of_big_integer_keys_is_a_number(self, sales: dict[str, Any]) -> None:
        # Primary keys are BigAutoFields; PostgreSQL's SUM(bigint) returns numeric.
        (row,) = aggregate([{"$group": {"_id": None, "ids": {"$sum": "$customer"}, "top": {"$max": "$id"}}}])
        people = [sales["ada"].pk] * 2 + [sales["bob"].pk] * 2 + [sales["cy"].pk]
        assert row["ids"] == sum(people) and type(row["ids"]) is int
        assert type(row["top"]) is int

    def test_constant_sum(self, sales: dict[str, Any]) -> None:
        assert aggregate([{"$group": {"_id": None, "n": {"$sum": 1}, "twice": {"$sum": 2}}}]) == [
            {"_id": None, "n": 6, "twice": 12}
        ]

    def test_null_id_is_one_group(self, sales: dict[str, Any]) -> None:
        assert aggregate([{"$group": {"_id": None, "n": {"$count": {}}}}]) == [{"_id": None, "n": 6}]

    def test_group_through_fk(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [{"$group": {"_id": "$customer.tier", "units": {"$sum": "$quantity"}}}, {"$sort": {"units": -1}}]
        )
        assert results == [
            {"_id": "silver", "units": 15},
            {"_id": "gold", "units": 4},
            {"_id": None, "units": 3},  # the order without a customer
        ]

    def test_group_by_fk_column(self, sales: dict[str, Any]) -> None:
        results = by_id(aggregate([{"$group": {"_id": "$product", "n": {"$count": {}}}}]))
        assert results == {
            sales["lamp"].pk: {"_id": sales["lamp"].pk, "n": 3},
            sales["desk"].pk: {"_id": sales["desk"].pk, "n": 1},
            sales["pen"].pk: {"_id": sales["pen"].pk, "n": 2},
        }

    def test_group_by_json_key(self, sales: dict[str, Any]) -> None:
        results = by_id(aggregate([{"$group": {"_id": "$customer.metadata.region", "n": {"$sum": 1}}}]))
        assert results == {"n": {"_id": "n", "n": 2}, "s": {"_id": "s", "n": 2}, None: {"_id": None, "n": 2}}

    def test_compound_id(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [
                {
                    "$group": {
                        "_id": {"status": "$status", "tier": "$customer.tier"},
                        "units": {"$sum": "$quantity"},
                    }
                },
                {"$sort": {"_id.status": 1, "units": -1, "_id.tier": 1}},
            ]
        )
        assert results == [
            {"_id": {"status": "new", "tier": "silver"}, "units": 5},
            {"_id": {"status": "new", "tier": "gold"}, "units": 1},
            {"_id": {"status": "paid", "tier": "gold"}, "units": 3},
            {"_id": {"status": "paid", "tier": None}, "units": 3},  # NULL sorts largest
            {"_id": {"status": "shipped", "tier": "silver"}, "units": 10},
        ]

    def test_push_and_add_to_set(self, sales: dict[str, Any]) -> None:
        results = by_id(
            aggregate(
                [
                    {
                        "$group": {
                            "_id": "$status",
                            "quantities": {"$push": "$quantity"},
                            "skus": {"$addToSet": "$product.sku"},
                            "notes": {"$push": "$notes"},
                        }
                    }
                ]
            )
        )
        assert sorted(results["paid"]["quantities"]) == [1, 2, 3]
        assert sorted(results["new"]["quantities"]) == [1, 5]
        assert sorted(results["new"]["skus"]) == ["L"]  # lamp twice, once in the set
        assert sorted(results["paid"]["skus"]) == ["D", "L", "P"]
        assert sorted(results["paid"]["notes"]) == ["o1", "o2", "o5"]

    def test_push_decimals_as_strings_at_scale(self, sales: dict[str, Any]) -> None:
        results = by_id(
            aggregate(
                [
                    {
                        "$group": {
                            "_id": "$status",
                            "prices": {"$push": "$product.price"},
                            "distinct": {"$addToSet": "$product.price"},
                        }
                    }
                ]
            )
        )
        assert sorted(results["paid"]["prices"]) == ["0.50", "120.00", "19.99"]
        assert results["new"]["prices"] == ["19.99", "19.99"]
        assert results["new"]["distinct"] == ["19.99"]


# Decimals and empty inputs -----------------------------------------------------------------------


class TestValues:
    def test_decimals_are_strings_at_the_column_scale(self, sales: dict[str, Any]) -> None:
        results = by_id(
            aggregate(
                [
                    {
                        "$group": {
                            "_id": "$status",
                            "total": {"$sum": "$product.price"},
                            "low": {"$min": "$product.price"},
                            "high": {"$max": "$product.price"},
                            "mean": {"$avg": "$product.price"},
                        }
                    }
                ]
            )
        )
        assert results["paid"] == {
            "_id": "paid",
            "total": "140.49",
            "low": "0.50",
            "high": "120.00",
            "mean": "46.83",
        }
        assert results["new"] == {
            "_id": "new",
            "total": "39.98",
            "low": "19.99",
            "high": "19.99",
            "mean": "19.99",
        }
        assert results["shipped"]["mean"] == "0.50"

    def test_average_keeps_more_places_but_never_an_exponent(self, sales: dict[str, Any]) -> None:
        rows = aggregate([{"$group": {"_id": "$active", "mean": {"$avg": "$price"}}}], "ProductAggregateNode")
        # Active: 19.99, 120.00, 0.00 -> 46.66333...; inactive: 0.50.
        assert by_id(rows) == {
            True: {"_id": True, "mean": "46.6633333333"},
            False: {"_id": False, "mean": "0.50"},
        }
        (desk,) = aggregate(
            [{"$match": {"sku": "D"}}, {"$group": {"_id": None, "mean": {"$avg": "$price"}}}],
            "ProductAggregateNode",
        )
        assert desk["mean"] == "120.00"

    @on_postgresql
    def test_nan_in_a_numeric_column_is_given_as_nan(self, sales: dict[str, Any]) -> None:
        # Written by another program (Django refuses NaN): the sum and average are NaN, not a crash.
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Product._meta.db_table} SET price = 'NaN' WHERE sku = 'D'")
        (row,) = aggregate(
            [{"$group": {"_id": None, "total": {"$sum": "$price"}, "mean": {"$avg": "$price"}}}],
            "ProductAggregateNode",
        )
        assert row == {"_id": None, "total": "NaN", "mean": "NaN"}

    def test_sum_of_nothing_is_zero_and_avg_min_max_null(self, sales: dict[str, Any]) -> None:
        results = by_id(
            aggregate(
                [
                    {
                        "$group": {
                            "_id": "$status",
                            "score": {"$sum": "$customer.metadata.score"},
                            "mean": {"$avg": "$customer.metadata.score"},
                            "low": {"$min": "$customer.metadata.score"},
                            "high": {"$max": "$reference"},
                        }
                    }
                ]
            )
        )
        # Only Ada (two paid orders) has a score.
        assert results["paid"]["score"] == 6
        assert results["paid"]["mean"] == 3
        assert results["new"] == {"_id": "new", "score": 0, "mean": None, "low": None, "high": None}

    def test_sum_over_null_column(self, sales: dict[str, Any]) -> None:
        (row,) = aggregate(
            [
                {"$match": {"customer": None}},
                {
                    "$group": {
                        "_id": None,
                        "ids": {"$sum": "$customer.id"},
                        "mean": {"$avg": "$customer.id"},
                        "low": {"$min": "$customer.id"},
                        "high": {"$max": "$customer.id"},
                        "n": {"$count": {}},
                    }
                },
            ]
        )
        assert row == {"_id": None, "ids": 0, "mean": None, "low": None, "high": None, "n": 1}

    def test_zero_sum_is_zero_for_match_and_sort_too(self, sales: dict[str, Any]) -> None:
        group = {"$group": {"_id": "$status", "score": {"$sum": "$customer.metadata.score"}}}
        assert sorted(r["_id"] for r in aggregate([group, {"$match": {"score": 0}}])) == ["new", "shipped"]
        assert [
            r["_id"] for r in aggregate([group, {"$match": {"score": {"$lt": 1}}}, {"$sort": {"_id": 1}}])
        ] == [
            "new",
            "shipped",
        ]
        ordered = aggregate([group, {"$sort": {"score": 1, "_id": 1}}])
        assert [(r["_id"], r["score"]) for r in ordered] == [("new", 0), ("shipped", 0), ("paid", 6)]

    def test_decimal_sum_of_nothing(self, sales: dict[str, Any]) -> None:
        # Customers group their orders' prices through the reverse relation; Dee has no orders.
        Customer.objects.create(name="Dee", email="dee@x.io")
        rows = aggregate(
            [
                {"$group": {"_id": "$name", "spent": {"$sum": "$orders.product.price"}}},
                {"$sort": {"spent": 1, "_id": 1}},
            ],
            "CustomerAggregateNode",
        )
        assert rows == [
            {"_id": "Dee", "spent": "0.00"},
            {"_id": "Cy", "spent": "19.99"},
            {"_id": "Bob", "spent": "20.49"},
            {"_id": "Ada", "spent": "139.99"},
        ]

    def test_empty_table(self, db: Any) -> None:
        assert aggregate([{"$group": {"_id": None, "n": {"$sum": 1}, "u": {"$sum": "$quantity"}}}]) == []
        assert aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]) == []
        assert aggregate([{"$count": "n"}]) == [{"n": 0}]
        assert aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}, {"$count": "groups"}]) == [
            {"groups": 0}
        ]

    def test_no_rows_after_match(self, sales: dict[str, Any]) -> None:
        pipeline = [
            {"$match": {"status": "cancelled"}},
            {"$group": {"_id": None, "u": {"$sum": "$quantity"}}},
        ]
        assert aggregate(pipeline) == []


# $first / $last ----------------------------------------------------------------------------------


FIRST_LAST = [
    {"$sort": {"quantity": -1}},
    {"$group": {"_id": "$status", "biggest": {"$first": "$notes"}, "smallest": {"$last": "$notes"}}},
    {"$sort": {"_id": 1}},
]


class TestFirstLast:
    @on_postgresql
    def test_first_and_last_follow_the_sort(self, sales: dict[str, Any]) -> None:
        assert aggregate(FIRST_LAST) == [
            {"_id": "new", "biggest": "o3", "smallest": "o6"},
            {"_id": "paid", "biggest": "o5", "smallest": "o2"},
            {"_id": "shipped", "biggest": "o4", "smallest": "o4"},
        ]

    @on_postgresql
    def test_first_of_a_decimal(self, sales: dict[str, Any]) -> None:
        # Quantity 1: o2 (desk) and o6 (lamp) tie; the primary key decides.
        pipeline = [
            {"$sort": {"quantity": 1, "id": -1}},
            {"$group": {"_id": None, "p": {"$first": "$product.price"}}},
        ]
        assert aggregate(pipeline) == [{"_id": None, "p": "19.99"}]

    @on_sqlite
    def test_sqlite_refuses_clearly(self, sales: dict[str, Any], unchanged_db: Any) -> None:
        workflow = build([("OrderAggregateNode", "a", {"pipeline": FIRST_LAST})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow)
        assert info.value.node_id == "a"
        assert "$first/$last need PostgreSQL" in str(info.value)
        assert isinstance(info.value.__cause__, WorkflowValidationError)

    def test_needs_a_sort_before_group(self, unchanged_db: Any) -> None:
        message = build_error([{"$group": {"_id": "$status", "f": {"$first": "$notes"}}}])
        assert "$first" in message and "'f'" in message
        assert "needs a $sort stage before $group" in message
        message = build_error([{"$group": {"_id": None, "l": {"$last": "$quantity"}}}, {"$sort": {"l": 1}}])
        assert "$last" in message and "needs a $sort stage before $group" in message

    def test_sort_must_use_own_columns(self, unchanged_db: Any) -> None:
        message = build_error(
            [{"$sort": {"customer.email": 1}}, {"$group": {"_id": None, "f": {"$first": "$notes"}}}]
        )
        assert "$first ordering must use the model's own columns" in message


# $sort $skip $limit $project $count $match-after-$group ------------------------------------------


class TestStages:
    def test_sort_by_accumulator_then_id(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [{"$group": {"_id": "$status", "u": {"$sum": "$quantity"}}}, {"$sort": {"u": -1, "_id": -1}}]
        )
        assert [r["_id"] for r in results] == ["shipped", "paid", "new"]

    def test_skip_and_limit_after_group(self, sales: dict[str, Any]) -> None:
        base = [{"$group": {"_id": "$status", "u": {"$sum": "$quantity"}}}, {"$sort": {"_id": 1}}]
        assert [r["_id"] for r in aggregate([*base, {"$skip": 1}])] == ["paid", "shipped"]
        assert [r["_id"] for r in aggregate([*base, {"$limit": 2}])] == ["new", "paid"]
        assert [r["_id"] for r in aggregate([*base, {"$skip": 1}, {"$limit": 1}])] == ["paid"]
        assert [r["_id"] for r in aggregate([*base, {"$limit": 2}, {"$skip": 1}])] == ["paid"]
        assert aggregate([*base, {"$skip": 5}]) == []
        # $limit 0 needs no query at all.
        assert run([("OrderAggregateNode", "a", {"pipeline": [*base, {"$limit": 0}]})])["a"] == {
            "results": []
        }

    def test_project_include_and_exclude(self, sales: dict[str, Any]) -> None:
        base = [
            {"$group": {"_id": "$status", "u": {"$sum": "$quantity"}, "n": {"$count": {}}}},
            {"$sort": {"_id": 1}},
        ]
        assert aggregate([*base, {"$project": {"u": 1}}])[0] == {"_id": "new", "u": 6}
        assert aggregate([*base, {"$project": {"u": 1, "_id": 0}}])[0] == {"u": 6}
        assert aggregate([*base, {"$project": {"n": 0}}])[0] == {"_id": "new", "u": 6}
        assert aggregate([*base, {"$project": {"_id": 0}}])[0] == {"u": 6, "n": 2}

    def test_count_stage(self, sales: dict[str, Any]) -> None:
        assert aggregate([{"$match": {"status": "paid"}}, {"$count": "paid"}]) == [{"paid": 3}]
        assert aggregate([{"$group": {"_id": "$customer.tier", "n": {"$sum": 1}}}, {"$count": "tiers"}]) == [
            {"tiers": 3}
        ]
        assert aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}}}, {"$limit": 2}, {"$count": "c"}]
        ) == [{"c": 2}]

    def test_match_after_group_is_having(self, sales: dict[str, Any]) -> None:
        base = [{"$group": {"_id": "$status", "u": {"$sum": "$quantity"}, "n": {"$count": {}}}}]
        ids = lambda extra: sorted(r["_id"] for r in aggregate([*base, *extra]))  # noqa: E731
        assert ids([{"$match": {"u": {"$gt": 6}}}]) == ["shipped"]
        assert ids([{"$match": {"u": 6}}]) == ["new", "paid"]
        assert ids([{"$match": {"n": {"$gte": 2}, "u": {"$lte": 6}}}]) == ["new", "paid"]
        assert ids([{"$match": {"$or": [{"n": 1}, {"_id": "new"}]}}]) == ["new", "shipped"]
        assert ids([{"$match": {"_id": {"$in": ["paid", "shipped"]}}}]) == ["paid", "shipped"]
        assert ids([{"$match": {"_id": {"$ne": "paid"}}}]) == ["new", "shipped"]

    def test_match_before_and_after_group(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [
                {"$match": {"product.sku": {"$in": ["L", "P"]}, "quantity": {"$gte": 2}}},
                {"$group": {"_id": "$customer.tier", "u": {"$sum": "$quantity"}}},
                {"$match": {"u": {"$gte": 3}}},
                {"$sort": {"u": 1}},
            ]
        )
        assert results == [{"_id": None, "u": 3}, {"_id": "silver", "u": 15}]

    def test_match_uses_the_full_filter_language(self, sales: dict[str, Any]) -> None:
        (row,) = aggregate(
            [
                {"$match": {"$or": [{"customer.metadata.region": "n"}, {"notes": {"$regex": "^o[56]$"}}]}},
                {"$group": {"_id": None, "n": {"$count": {}}, "notes": {"$push": "$notes"}}},
            ]
        )
        assert row["n"] == 4 and sorted(row["notes"]) == ["o1", "o2", "o5", "o6"]

    def test_pipeline_without_group_returns_records(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [
                {"$match": {"status": "paid"}},
                {"$sort": {"quantity": -1}},
                {"$skip": 1},
                {"$limit": 1},
                {"$project": {"notes": 1, "quantity": 1}},
            ]
        )
        assert results == [{"quantity": 2, "notes": "o1"}]

    def test_sorted_records_decimals_are_strings(self, sales: dict[str, Any]) -> None:
        results = aggregate(
            [
                {"$match": {"price": {"$lt": 1}}},
                {"$sort": {"price": 1}},
                {"$project": {"sku": 1, "price": 1}},
            ],
            "ProductAggregateNode",
        )
        assert results == [{"sku": "F", "price": "0.00"}, {"sku": "P", "price": "0.50"}]

    def test_one_query_for_a_full_grouped_pipeline(self, sales: dict[str, Any]) -> None:
        pipeline = [
            {"$match": {"status": {"$ne": "shipped"}}},
            {
                "$group": {
                    "_id": {"t": "$customer.tier", "s": "$status"},
                    "u": {"$sum": "$quantity"},
                    "p": {"$push": "$notes"},
                    "a": {"$avg": "$product.price"},
                }
            },
            {"$match": {"u": {"$gte": 1}}},
            {"$sort": {"u": -1, "_id.t": 1}},
            {"$skip": 1},
            {"$limit": 2},
            {"$project": {"p": 0}},
        ]
        with CaptureQueriesContext(connection) as queries:
            results = run([("OrderAggregateNode", "a", {"pipeline": pipeline})])["a"]["results"]
        work = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
        assert len(work) == 1
        assert "GROUP BY" in work[0].upper()
        assert results == [
            {"_id": {"t": "gold", "s": "paid"}, "u": 3, "a": "69.995"},
            {"_id": {"t": None, "s": "paid"}, "u": 3, "a": "0.50"},
        ]

    def test_pipeline_from_an_input(self, sales: dict[str, Any]) -> None:
        workflow = build([("OrderAggregateNode", "a", {"pipeline": "{{p}}"})])
        pipeline = [{"$group": {"_id": None, "u": {"$sum": "$quantity"}}}]
        results, _ = LocalRuntime().execute(workflow, inputs={"p": pipeline})
        assert results["a"] == {"results": [{"_id": None, "u": 22}]}
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"p": [{"$unwind": "$x"}]})
        assert info.value.node_id == "a" and "unknown stage '$unwind'" in str(info.value)

    def test_result_feeds_a_connection(self, sales: dict[str, Any]) -> None:
        results = run(
            [
                (
                    "OrderAggregateNode",
                    "top",
                    {
                        "pipeline": [
                            {"$group": {"_id": "$product", "u": {"$sum": "$quantity"}}},
                            {"$sort": {"u": -1}},
                            {"$limit": 1},
                        ]
                    },
                ),
                ("ProductReadNode", "r", {}),
            ],
            [("top", "results.0._id", "r", "id")],
        )
        assert results["r"]["sku"] == "P"


# Errors at build() --------------------------------------------------------------------------------


class TestBuildErrors:
    def test_unknown_stage(self, unchanged_db: Any) -> None:
        message = build_error([{"$match": {}}, {"$unwind": "$tags"}])
        assert "stage 1: unknown stage '$unwind'" in message
        assert "$match, $group, $sort, $skip, $limit, $project, $count" in message

    def test_unknown_accumulator(self, unchanged_db: Any) -> None:
        message = build_error([{"$group": {"_id": None, "mid": {"$median": "$quantity"}}}])
        assert "unknown accumulator '$median' for 'mid'" in message
        assert "$sum" in message and "$addToSet" in message

    @pytest.mark.parametrize(
        ("pipeline", "words"),
        [
            ([{"$group": {"_id": "$colour"}}], ["unknown field 'colour'", "quantity"]),
            ([{"$group": {"_id": None, "s": {"$sum": "$customer.colour"}}}], ["customer.colour", "email"]),
            ([{"$group": {"_id": "status"}}], ['field references look like "$price"', "'status'"]),
            ([{"$group": {"_id": None, "s": {"$avg": 5}}}], ['field references look like "$price"', "5"]),
            ([{"$group": {"_id": {"k": "$nope"}}}], ["unknown field 'nope'"]),
            ([{"$sort": {"colour": 1}}], ["unknown field 'colour'"]),
        ],
    )
    def test_bad_field_reference(self, unchanged_db: Any, pipeline: Any, words: list[str]) -> None:
        message = build_error(pipeline)
        for word in words:
            assert word in message

    @pytest.mark.parametrize(
        ("pipeline", "words"),
        [
            ([{"$limit": 5}, {"$match": {"status": "paid"}}], "$match after $sort/$skip/$limit/$project"),
            ([{"$skip": 1}, {"$group": {"_id": None}}], "$group must come once, before $skip/$limit"),
            ([{"$group": {"_id": None}}, {"$group": {"_id": None}}], "$group must come once"),
            ([{"$limit": 1}, {"$sort": {"quantity": 1}}], "$sort after $skip/$limit needs a subquery"),
            ([{"$count": "n"}, {"$limit": 1}], "nothing may follow $count"),
            ([{"$project": {"notes": 1}}, {"$match": {"notes": "o1"}}], "$match after"),
        ],
    )
    def test_stage_order_not_supported(self, unchanged_db: Any, pipeline: Any, words: str) -> None:
        assert words in build_error(pipeline)

    def test_project_mixing_include_and_exclude(self, unchanged_db: Any) -> None:
        message = build_error(
            [
                {"$group": {"_id": "$status", "u": {"$sum": 1}, "n": {"$count": {}}}},
                {"$project": {"u": 1, "n": 0}},
            ]
        )
        assert "$project values must all be 1 or all be 0 (except _id)" in message
        assert "all be 1 or all be 0" in build_error([{"$project": {"notes": 1, "quantity": 0}}])
        assert "all be 1 or all be 0" in build_error([{"$project": {"notes": "yes"}}])

    def test_project_unknown_output(self, unchanged_db: Any) -> None:
        message = build_error([{"$group": {"_id": "$status", "u": {"$sum": 1}}}, {"$project": {"total": 1}}])
        assert "unknown field 'total'" in message and "_id" in message and "u" in message

    def test_sort_unknown_output(self, unchanged_db: Any) -> None:
        message = build_error(
            [{"$group": {"_id": {"s": "$status"}, "u": {"$sum": 1}}}, {"$sort": {"total": -1}}]
        )
        assert "'total' is not a $group output" in message
        assert "_id.s" in message and "u" in message

    def test_having_operator_not_supported(self, unchanged_db: Any) -> None:
        message = build_error(
            [{"$group": {"_id": "$status", "u": {"$sum": 1}}}, {"$match": {"u": {"$regex": "1"}}}]
        )
        assert "operator '$regex' on group output 'u'" in message
        assert "$gte" in message and "$in" in message

    @pytest.mark.parametrize(
        ("pipeline", "words"),
        [
            ({"$group": {"_id": None}}, "must be a list of stages"),
            ([{"$match": {}, "$limit": 1}], "stage 0 must be an object with one operator"),
            ([{"$group": {"n": {"$sum": 1}}}], "$group needs an object with '_id'"),
            ([{"$group": {"_id": None, "n": 1}}], "accumulator 'n' must be"),
            ([{"$group": {"_id": None, "1bad": {"$sum": 1}}}], "output name '1bad'"),
            ([{"$limit": -1}], "$limit takes a non-negative integer"),
            ([{"$skip": "2"}], "$skip takes a non-negative integer"),
            ([{"$sort": {"quantity": 2}}], "$sort direction of 'quantity' must be 1 or -1"),
            ([{"$count": "has space"}], "output name 'has space'"),
            ([{"$match": {"status": {"$gtx": 1}}}], "unknown operator '$gtx'"),
            ([{"$group": {"_id": None, "c": {"$count": "$quantity"}}}], "$count accumulator 'c' takes {}"),
            ([{"$limit": 1}] * 33, "at most 32"),
        ],
    )
    def test_malformed(self, unchanged_db: Any, pipeline: Any, words: str) -> None:
        assert words in build_error(pipeline)

    def test_pipeline_required(self, unchanged_db: Any) -> None:
        with pytest.raises(WorkflowValidationError, match="needs 'pipeline'"):
            build([("OrderAggregateNode", "a", {})])

    def test_excluded_field_cannot_be_aggregated(self, unchanged_db: Any) -> None:
        message = build_error([{"$group": {"_id": "$password"}}], "UserAggregateNode")
        assert "unknown field 'password'" in message


# QueryBuilder.aggregate ---------------------------------------------------------------------------


class TestQueryBuilderAggregate:
    def test_filter_becomes_a_match(self, sales: dict[str, Any]) -> None:
        qb = QueryBuilder(Order).filter({"status": "paid"}).filter({"quantity": {"$gte": 2}})
        with CaptureQueriesContext(connection) as queries:
            result = qb.aggregate(
                [{"$group": {"_id": None, "u": {"$sum": "$quantity"}, "n": {"$count": {}}}}]
            )
        assert result == [{"_id": None, "u": 5, "n": 2}]
        assert len(queries.captured_queries) == 1

    def test_same_as_the_node(self, sales: dict[str, Any]) -> None:
        pipeline = [{"$group": {"_id": "$customer.tier", "u": {"$sum": "$quantity"}}}, {"$sort": {"_id": 1}}]
        assert QueryBuilder(Order).aggregate(pipeline) == aggregate(pipeline)

    def test_errors_name_the_problem(self, sales: dict[str, Any]) -> None:
        with pytest.raises(WorkflowValidationError, match="unknown accumulator '\\$median'"):
            QueryBuilder(Order).aggregate([{"$group": {"_id": None, "m": {"$median": "$quantity"}}}])
