"""Keyset paging with `after` / `next_cursor`, the default order, and QueryBuilder."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from django_dataflow import LocalRuntime, QueryBuilder
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Customer, Order, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PRICES = ["5.00", "7.50", "7.50", "10.00", "12.25"]
DESCRIPTIONS = [None, "b", "a", None, "c", "a"]
ROWS = 23


@pytest.fixture
def shelf() -> list[Product]:
    """23 products: sku unique; price, stock, description repeat (description has NULLs);
    created_at differs only in microseconds and not in pk order."""
    products = []
    for i in range(ROWS):
        p = Product.objects.create(
            sku=f"P{i:02d}",
            name=f"n{i % 4}",
            price=PRICES[i % 5],
            stock=i % 3,
            description=DESCRIPTIONS[i % 6],
        )
        Product.objects.filter(pk=p.pk).update(created_at=T0 + dt.timedelta(microseconds=(i * 7) % ROWS))
        products.append(p)
    return products


def listing(params: dict[str, Any], node_type: str = "ProductListNode") -> dict[str, Any]:
    """One List node's result."""
    return run([(node_type, "n", params)])["n"]


def walk(params: dict[str, Any], node_type: str = "ProductListNode") -> list[list[dict[str, Any]]]:
    """Every page, following next_cursor until a page comes without one."""
    pages = []
    cursor = None
    for _ in range(100):
        page = listing({**params, **({"after": cursor} if cursor else {})}, node_type)
        pages.append(page["records"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return pages
        assert page["count"] == params["limit"], "only a full page may have a next page"
    raise AssertionError("paging did not end")


def expected(field_specs: Sequence[tuple[str, bool]], rows: list[dict[str, Any]]) -> list[int]:
    """Primary keys in the documented order: each key in turn (NULL largest), then pk ascending."""

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for name, descending in field_specs:
            x, y = a[name], b[name]
            if x == y:
                continue
            if x is None or y is None:
                result = 1 if x is None else -1
            else:
                result = 1 if x > y else -1
            return -result if descending else result
        return (a["id"] > b["id"]) - (a["id"] < b["id"])

    return [r["id"] for r in sorted(rows, key=functools.cmp_to_key(compare))]


def ids(pages: list[list[dict[str, Any]]]) -> list[int]:
    """The pks of all pages, in order."""
    return [r["id"] for page in pages for r in page]


def product_rows() -> list[dict[str, Any]]:
    return list(Product.objects.values("id", "sku", "price", "stock", "description", "created_at"))


class TestWalkingPages:
    def test_unique_field(self, shelf: list[Product]) -> None:
        pages = walk({"order_by": ["sku"], "limit": 5})
        assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
        assert [r["sku"] for page in pages for r in page] == [f"P{i:02d}" for i in range(ROWS)]

    def test_unique_field_descending(self, shelf: list[Product]) -> None:
        pages = walk({"order_by": {"sku": -1}, "limit": 4})
        assert [r["sku"] for page in pages for r in page] == [f"P{i:02d}" for i in reversed(range(ROWS))]

    @pytest.mark.parametrize(
        "order_by",
        [
            ["description"],
            ["-description"],
            ["description", "-price"],
            ["-price"],
            ["price", "description"],
            {"stock": 1, "description": -1},
            ["-created_at"],
            ["created_at"],
        ],
    )
    @pytest.mark.parametrize("limit", [1, 3, 7])
    def test_non_unique_keys_and_nulls(self, shelf: list[Product], order_by: Any, limit: int) -> None:
        specs = (
            [(k, v == -1) for k, v in order_by.items()]
            if isinstance(order_by, dict)
            else [(k.lstrip("-"), k.startswith("-")) for k in order_by]
        )
        pages = walk({"order_by": order_by, "limit": limit})
        walked = ids(pages)
        assert len(walked) == len(set(walked)) == ROWS
        assert walked == expected(specs, product_rows())
        # The same order as one big page.
        assert walked == [r["id"] for r in listing({"order_by": order_by, "limit": 100})["records"]]

    def test_null_is_largest(self, shelf: list[Product]) -> None:
        ascending = [
            r["description"] for page in walk({"order_by": ["description"], "limit": 4}) for r in page
        ]
        assert ascending[-8:] == [None] * 8
        assert ascending[:-8] == sorted(ascending[:-8])
        descending = [
            r["description"] for page in walk({"order_by": ["-description"], "limit": 4}) for r in page
        ]
        assert descending[:8] == [None] * 8

    def test_with_filter(self, shelf: list[Product]) -> None:
        spec = {"$or": [{"description": None}, {"price": {"$gte": 10}}]}
        pages = walk({"order_by": ["description", "-price"], "limit": 2, "filter": spec})
        rows = [r for r in product_rows() if r["description"] is None or r["price"] >= 10]
        assert ids(pages) == expected([("description", False), ("price", True)], rows)
        assert 5 < len(rows) < ROWS

    def test_last_page_exactly_full_has_no_cursor(self, shelf: list[Product]) -> None:
        spec = {"sku": {"$lt": "P20"}}  # 20 rows
        pages = walk({"order_by": ["sku"], "limit": 5, "filter": spec})
        assert [len(p) for p in pages] == [5, 5, 5, 5]
        single = listing({"filter": spec, "limit": 20})
        assert "next_cursor" not in single
        assert "next_cursor" in listing({"filter": spec, "limit": 19})

    def test_no_cursor_when_everything_fits(self, shelf: list[Product]) -> None:
        result = listing({"limit": 100})
        assert result["count"] == ROWS
        assert "next_cursor" not in result
        assert "next_cursor" not in listing({"limit": 0})

    def test_default_order_is_pk(self, shelf: list[Product]) -> None:
        assert ids(walk({"limit": 6})) == sorted(p.pk for p in shelf)

    def test_fields_projection_does_not_break_the_cursor(self, shelf: list[Product]) -> None:
        pages = walk({"order_by": ["-price"], "limit": 4, "fields": ["sku"]})
        assert all(set(r) == {"sku"} for page in pages for r in page)
        skus = [r["sku"] for page in pages for r in page]
        assert len(set(skus)) == ROWS

    def test_with_total_counts_every_match_on_every_page(self, shelf: list[Product]) -> None:
        first = listing({"order_by": ["price"], "limit": 10, "with_total": True})
        second = listing(
            {"order_by": ["price"], "limit": 10, "with_total": True, "after": first["next_cursor"]}
        )
        assert first["total"] == second["total"] == ROWS
        assert second["count"] == 10

    def test_page_after_a_cursor_is_one_query_without_offset(self, shelf: list[Product]) -> None:
        cursor = listing({"order_by": ["description"], "limit": 5})["next_cursor"]
        with CaptureQueriesContext(connection) as queries:
            listing({"order_by": ["description"], "limit": 5, "after": cursor})
        # Inside the test's transaction the run also takes a savepoint; one SELECT does the work.
        selects = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("SELECT")]
        assert len(selects) == 1
        assert "OFFSET" not in selects[0].upper()

    def test_rows_added_before_the_cursor_do_not_shift_pages(self, shelf: list[Product]) -> None:
        first = listing({"order_by": ["sku"], "limit": 5})
        Product.objects.create(sku="A-new", name="x", price="1.00")  # sorts before every page
        second = listing({"order_by": ["sku"], "limit": 5, "after": first["next_cursor"]})
        assert [r["sku"] for r in second["records"]] == ["P05", "P06", "P07", "P08", "P09"]

    def test_cursor_through_a_connection(self, shelf: list[Product]) -> None:
        results = run(
            [
                ("ProductListNode", "p1", {"order_by": ["-price"], "limit": 10}),
                ("ProductListNode", "p2", {"order_by": ["-price"], "limit": 10}),
            ],
            [("p1", "next_cursor", "p2", "after")],
        )
        together = [r["id"] for r in results["p1"]["records"] + results["p2"]["records"]]
        assert together == expected([("price", True)], product_rows())[:20]

    def test_cursor_from_an_input(self, shelf: list[Product]) -> None:
        cursor = listing({"order_by": ["stock"], "limit": 8})["next_cursor"]
        workflow = build([("ProductListNode", "n", {"order_by": ["stock"], "limit": 8, "after": "{{c}}"})])
        results, _ = LocalRuntime().execute(workflow, inputs={"c": cursor})
        assert [r["id"] for r in results["n"]["records"]] == expected([("stock", False)], product_rows())[
            8:16
        ]

    def test_through_a_nullable_relation(self, shelf: list[Product]) -> None:
        people = [Customer.objects.create(name=n, email=f"{n}@x.io") for n in ("b", "a", "c")]
        for i in range(11):
            Order.objects.create(
                product=shelf[i], customer=people[i % 3] if i % 4 else None, quantity=1 + i % 2, notes=f"o{i}"
            )
        rows = [
            {"id": o.pk, "email": o.customer.email if o.customer else None, "quantity": o.quantity}
            for o in Order.objects.select_related("customer")
        ]
        for order_by, specs in [
            (["customer.email"], [("email", False)]),
            (["-customer.email", "quantity"], [("email", True), ("quantity", False)]),
        ]:
            pages = walk({"order_by": order_by, "limit": 2}, "OrderListNode")
            assert ids(pages) == expected(specs, rows), order_by

    def test_json_key_order(self, db: Any) -> None:
        for i in range(9):
            Customer.objects.create(
                name=f"c{i}", email=f"{i}@x.io", metadata={"rank": i % 4} if i % 3 else {}
            )
        pages = walk({"order_by": ["metadata.rank"], "limit": 2}, "CustomerListNode")
        assert len(ids(pages)) == len(set(ids(pages))) == 9
        single = listing({"order_by": ["metadata.rank"], "limit": 100}, "CustomerListNode")
        assert ids(pages) == [r["id"] for r in single["records"]]


# Refused cursors -------------------------------------------------------------------------------


def build_error(params: dict[str, Any]) -> str:
    with pytest.raises(WorkflowValidationError) as info:
        build([("ProductListNode", "n", params)])
    return str(info.value)


class TestRefusedCursors:
    @pytest.fixture
    def cursor(self, shelf: list[Product]) -> str:
        return listing({"order_by": ["price"], "limit": 5})["next_cursor"]

    def test_tampered(self, cursor: str, unchanged_db: Any) -> None:
        flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
        for bad in (flipped, cursor[:-1], "x" + cursor, "not-a-cursor", ""):
            message = build_error({"order_by": ["price"], "limit": 5, "after": bad})
            assert "'after' is not a cursor returned by a List node" in message

    def test_forged_payload(self, cursor: str, unchanged_db: Any) -> None:
        from django.core import signing

        forged = signing.dumps({"k": ["price", "pk"], "v": ["0", 0]}, salt="something else")
        assert "'after' is not a cursor" in build_error({"order_by": ["price"], "after": forged})

    def test_signed_with_another_secret(self, cursor: str) -> None:
        with override_settings(SECRET_KEY="another secret key, long enough to be a real one"):
            message = build_error({"order_by": ["price"], "limit": 5, "after": cursor})
        assert "'after' is not a cursor" in message

    def test_signed_with_a_rotated_secret_still_in_fallbacks(self, cursor: str) -> None:
        old = settings.SECRET_KEY
        with override_settings(SECRET_KEY="the new secret key, long enough to be a real one",
                               SECRET_KEY_FALLBACKS=[old]):
            result = listing({"order_by": ["price"], "limit": 5, "after": cursor})
        assert result["records"][0]["id"] == expected([("price", False)], product_rows())[5]

    def test_not_a_string(self, shelf: list[Product]) -> None:
        message = build_error({"order_by": ["price"], "after": 5})
        assert "'after' must be a cursor string, not int" in message

    @pytest.mark.parametrize(
        "order_by", [["-price"], ["price", "sku"], ["sku"], None, {"price": -1}, ["stock"]]
    )
    def test_different_order_by(self, cursor: str, order_by: Any, unchanged_db: Any) -> None:
        params = {"limit": 5, "after": cursor, **({"order_by": order_by} if order_by else {})}
        message = build_error(params)
        assert "'after'" in message
        assert "order_by" in message
        assert "keep order_by fixed" in message

    def test_same_order_by_in_dict_form_is_accepted(self, cursor: str) -> None:
        result = listing({"order_by": {"price": 1}, "limit": 5, "after": cursor})
        assert result["records"][0]["id"] == expected([("price", False)], product_rows())[5]

    def test_bad_cursor_from_an_input_fails_at_run_time(self, cursor: str, unchanged_db: Any) -> None:
        workflow = build([("ProductListNode", "n", {"order_by": ["-price"], "after": "{{c}}"})])
        for bad, words in [(cursor, "keep order_by fixed"), ("garbage", "not a cursor")]:
            with pytest.raises(NodeExecutionError) as info:
                LocalRuntime().execute(workflow, inputs={"c": bad})
            assert info.value.node_id == "n"
            assert "'after'" in str(info.value) and words in str(info.value)

    def test_null_after_is_the_first_page(self, shelf: list[Product]) -> None:
        assert listing({"order_by": ["sku"], "limit": 2, "after": None})["records"][0]["sku"] == "P00"


# Meta.ordering -----------------------------------------------------------------------------------


class TestMetaOrdering:
    def test_list_uses_meta_ordering_then_pk(self, shelf: list[Product], monkeypatch: Any) -> None:
        monkeypatch.setattr(Product._meta, "ordering", ["-stock", "description"])
        pages = walk({"limit": 4})
        assert ids(pages) == expected([("stock", True), ("description", False)], product_rows())

    def test_order_by_overrides_meta_ordering(self, shelf: list[Product], monkeypatch: Any) -> None:
        monkeypatch.setattr(Product._meta, "ordering", ["-stock"])
        assert ids(walk({"order_by": ["sku"], "limit": 10})) == [p.pk for p in shelf]

    def test_meta_ordering_through_a_relation(self, shelf: list[Product], monkeypatch: Any) -> None:
        for i in (3, 0, 4, 1):
            Order.objects.create(product=shelf[i], quantity=1, notes=f"o{i}")
        monkeypatch.setattr(Order._meta, "ordering", ["-product__price"])
        records = listing({}, "OrderListNode")["records"]
        assert [r["notes"] for r in records] == ["o4", "o3", "o1", "o0"]

    def test_cursor_made_under_meta_ordering(self, shelf: list[Product], monkeypatch: Any) -> None:
        monkeypatch.setattr(Product._meta, "ordering", ["price"])
        cursor = listing({"limit": 5})["next_cursor"]
        # The cursor names the effective order, so an explicit order_by of the same keys accepts it.
        assert listing({"order_by": ["price"], "limit": 5, "after": cursor})["count"] == 5
        assert "keep order_by fixed" in build_error({"order_by": ["-price"], "after": cursor})

    def test_random_meta_ordering_falls_back_to_pk(self, shelf: list[Product], monkeypatch: Any) -> None:
        monkeypatch.setattr(Product._meta, "ordering", ["?"])
        assert ids(walk({"limit": 9})) == [p.pk for p in shelf]


# QueryBuilder ------------------------------------------------------------------------------------


class TestQueryBuilder:
    def test_to_params(self) -> None:
        qb = (
            QueryBuilder(Product)
            .filter({"price": {"$lt": 50}})
            .filter({"active": True})
            .sort({"price": -1})
            .limit(10)
            .offset(20)
            .fields(["sku", "price"])
        )
        assert qb.to_params() == {
            "filter": {"$and": [{"price": {"$lt": 50}}, {"active": True}]},
            "order_by": {"price": -1},
            "limit": 10,
            "offset": 20,
            "fields": ["sku", "price"],
        }
        assert QueryBuilder(Product).filter({"sku": "A"}).to_params() == {"filter": {"sku": "A"}}
        assert QueryBuilder(Product).to_params() == {}

    def test_params_run_as_a_list_node(self, shelf: list[Product]) -> None:
        qb = QueryBuilder(Product).filter({"stock": {"$gte": 1}}).sort(["-price"]).limit(4).offset(3)
        qb = qb.fields(["id", "sku"])
        records = listing(qb.to_params())["records"]
        rows = [r for r in product_rows() if r["stock"] >= 1]
        assert [r["id"] for r in records] == expected([("price", True)], rows)[3:7]
        assert all(set(r) == {"id", "sku"} for r in records)

    def test_to_queryset_matches_the_list_node(self, shelf: list[Product]) -> None:
        for qb in (
            QueryBuilder(Product).sort(["price"]).limit(7).offset(2),
            QueryBuilder(Product).filter({"description": {"$ne": "a"}}).sort(["-description"]),
            QueryBuilder(Product).offset(20),
            QueryBuilder(Product).sort({"stock": 1, "created_at": -1}).limit(5),
        ):
            qs = qb.to_queryset()
            assert qs.ordered
            assert [p.pk for p in qs] == [r["id"] for r in listing(qb.to_params())["records"]]

    def test_to_queryset_is_a_real_queryset(self, shelf: list[Product]) -> None:
        qs = QueryBuilder(Product).filter({"sku": {"$in": ["P01", "P02"]}}).to_queryset()
        assert qs.model is Product
        assert sorted(qs.values_list("sku", flat=True)) == ["P01", "P02"]
        assert qs.filter(sku="P01").count() == 1

    def test_to_queryset_uses_meta_ordering(self, shelf: list[Product], monkeypatch: Any) -> None:
        monkeypatch.setattr(Product._meta, "ordering", ["-stock"])
        qs = QueryBuilder(Product).limit(30).to_queryset()
        assert [p.pk for p in qs] == expected([("stock", True)], product_rows())

    def test_count_ignores_paging(self, shelf: list[Product]) -> None:
        qb = QueryBuilder(Product).filter({"description": None})
        assert qb.count() == 8
        assert qb.limit(2).offset(1).count() == 8
        assert qb.filter({"price": "5.00"}).count() == 2
        assert QueryBuilder(Product).count() == ROWS

    def test_steps_return_new_builders(self) -> None:
        base = QueryBuilder(Product).filter({"active": True})
        narrowed = base.filter({"stock": 1}).limit(3)
        assert base.to_params() == {"filter": {"active": True}}
        assert narrowed.to_params() == {"filter": {"$and": [{"active": True}, {"stock": 1}]}, "limit": 3}

    def test_model_by_label(self) -> None:
        assert QueryBuilder("shop.Product").filter({"sku": "x"}).to_params() == {"filter": {"sku": "x"}}

    def test_each_step_is_validated(self) -> None:
        qb = QueryBuilder(Product)
        with pytest.raises(WorkflowValidationError, match="unknown field 'colour'"):
            qb.filter({"colour": "red"})
        with pytest.raises(WorkflowValidationError, match="'\\$gtx'"):
            qb.filter({"price": {"$gtx": 1}})
        with pytest.raises(WorkflowValidationError, match="colour"):
            qb.sort(["-colour"])
        with pytest.raises(WorkflowValidationError, match="'colour'"):
            qb.fields(["sku", "colour"])
        with pytest.raises(
            WorkflowValidationError, match="'limit' is 10001, more than DATAFLOW\\['MAX_LIMIT'\\]"
        ):
            qb.limit(10_001)
        with pytest.raises(WorkflowValidationError, match="'limit' must be an integer"):
            qb.limit("ten")  # type: ignore[arg-type]
        with pytest.raises(WorkflowValidationError, match="'offset' must be at least 0"):
            qb.offset(-1)

    def test_limit_bound_follows_settings(self) -> None:
        with override_settings(DATAFLOW={**settings.DATAFLOW, "MAX_LIMIT": 50, "DEFAULT_LIMIT": 20}):
            QueryBuilder(Product).limit(50)
            with pytest.raises(WorkflowValidationError, match="MAX_LIMIT"):
                QueryBuilder(Product).limit(51)

    def test_unregistered_model(self) -> None:
        from django.contrib.auth.models import Group

        with pytest.raises(WorkflowValidationError, match="not registered"):
            QueryBuilder(Group)

    def test_aggregate(self, shelf: list[Product]) -> None:
        qb = QueryBuilder(Product).filter({"description": {"$ne": None}})
        result = qb.aggregate([{"$group": {"_id": "$description", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}])
        assert result == [{"_id": "a", "n": 7}, {"_id": "b", "n": 4}, {"_id": "c", "n": 4}]
