"""The result cache: hits, keys, invalidation by every kind of write, and the transaction rule.

Invalidation happens after commit, so these tests run with transaction=True (a test wrapped in
one transaction never commits).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from django_dataflow import cache, sqlwatch
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from tests.cache_support import cache_count, caching
from tests.conftest import build, run

pytestmark = pytest.mark.django_db(transaction=True)

LIST = (
    "ProductListNode",
    "cheap",
    {"filter": {"price": {"$lt": 50}}, "order_by": ["sku"], "fields": ["sku", "name"]},
)


def products(n: int = 4) -> list[Any]:
    from shop.models import Product

    return [
        Product.objects.create(name=f"P{i}", sku=f"S-{i}", price=Decimal(10 + i), stock=i) for i in range(n)
    ]


def cached_list() -> list[dict[str, Any]]:
    return run([LIST])["cheap"]["records"]


def fresh_list() -> list[dict[str, Any]]:
    from shop.models import Product

    return list(Product.objects.filter(price__lt=50).order_by("sku").values("sku", "name"))


def warm(read: Any) -> Any:
    """Run a read until the cache answers it (a query with joins needs a run to learn the joined
    models before one is stored); returns the hit's result."""
    hits = cache_count("hit")
    for _ in range(3):
        result = read()
        if cache_count("hit") == hits + 1:
            return result
    raise AssertionError("three identical reads and no hit")


def test_second_identical_read_is_a_hit_without_sql() -> None:
    products()
    with caching():
        misses = cache_count("miss")
        first = cached_list()
        assert cache_count("miss") == misses + 1
        with CaptureQueriesContext(connection) as queries:
            hits = cache_count("hit")
            second = cached_list()
        assert cache_count("hit") == hits + 1
        assert len(queries) == 0
        assert first == second == fresh_list()


def test_a_query_with_joins_is_stored_once_its_models_are_known() -> None:
    from shop.models import Order

    items = products(2)
    Order.objects.create(product=items[0], quantity=1)
    joined = ("OrderListNode", "n", {"filter": {"product.name": "P0"}, "fields": ["quantity"]})
    with caching():
        hits, misses = cache_count("hit"), cache_count("miss")
        for _ in range(3):
            assert run([joined])["n"]["records"] == [{"quantity": 1}]
        assert (cache_count("miss") - misses, cache_count("hit") - hits) == (2, 1)


def test_no_cache_setting_means_no_cache() -> None:
    products()
    hits = cache_count("hit")
    for _ in range(3):
        cached_list()
    assert cache_count("hit") == hits


@pytest.mark.parametrize(
    "node",
    [
        ("ProductReadNode", "r", {"conditions": {"sku": "S-0"}}),
        ("ProductCountNode", "r", {"filter": {"stock": {"$gte": 1}}}),
        ("ProductAggregateNode", "r", {"pipeline": [{"$group": {"_id": None, "n": {"$sum": "$stock"}}}]}),
    ],
    ids=["read", "count", "aggregate"],
)
def test_read_count_and_aggregate_are_cached_and_invalidated(node: tuple) -> None:
    from shop.models import Product

    products()
    with caching():
        before = warm(lambda: run([node])["r"])
        Product.objects.filter(sku="S-0").update(stock=100)
        after = run([node])["r"]
        assert after != before
        assert after == run([(node[0], node[1], {**node[2], "cache": False})])["r"]


def test_node_param_cache_false_never_uses_the_cache() -> None:
    products()
    no_cache = (LIST[0], LIST[1], {**LIST[2], "cache": False})
    with caching():
        hits, bypass = cache_count("hit"), cache_count("bypass")
        for _ in range(4):
            run([no_cache])
        assert cache_count("hit") == hits
        assert cache_count("bypass") == bypass  # not even counted: the node opted out


def test_cache_ttl_param_sets_the_entry_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_dataflow import cache_store

    products()
    seen: list[int] = []
    original = cache_store.set_value
    monkeypatch.setattr(
        cache_store, "set_value", lambda a, k, v, ttl: (seen.append(ttl), original(a, k, v, ttl))
    )
    with caching(ttl=300):
        for _ in range(2):
            run([(LIST[0], LIST[1], {**LIST[2], "cache_ttl": 7})])
        for _ in range(2):
            run([(LIST[0], LIST[1], {**LIST[2], "filter": {"price": {"$lt": 40}}})])
    assert seen == [7, 300]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"cache": "yes"}, "'cache' must be true or false"),
        ({"cache_ttl": -1}, "'cache_ttl' must be at least 0"),
        ({"cache_ttl": "soon"}, "'cache_ttl' must be an integer"),
    ],
)
def test_bad_cache_params_are_build_errors(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(WorkflowValidationError, match=fragment):
        build([(LIST[0], LIST[1], {**LIST[2], **params})])


def test_cache_params_only_on_reads() -> None:
    with pytest.raises(WorkflowValidationError, match="unknown param 'cache'"):
        build([("ProductCreateNode", "c", {"name": "x", "sku": "x", "price": "1", "cache": False})])


def in_acme(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache sees schema 'acme' (the runtimes still run untenanted: tests/tenants has real schemas)."""
    from types import SimpleNamespace

    monkeypatch.setattr(cache, "tenancy", SimpleNamespace(current_schema=lambda using="default": "acme"))


def test_tenant_schema_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    products()
    with caching():
        warm(cached_list)
        in_acme(monkeypatch)
        hits, misses = cache_count("hit", "acme"), cache_count("miss", "acme")
        cached_list()
        assert cache_count("miss", "acme") == misses + 1, "another schema must not see the public entry"
        cached_list()
        assert cache_count("hit", "acme") == hits + 1


def test_a_write_in_another_schema_does_not_invalidate_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    products()
    with caching():
        warm(cached_list)
        in_acme(monkeypatch)
        cache.touch("shop.Product")
        monkeypatch.undo()
        hits = cache_count("hit")
        cached_list()
        assert cache_count("hit") == hits + 1


def test_dotted_filter_depends_on_the_joined_model() -> None:
    from shop.models import Order, Product

    items = products(2)
    Order.objects.create(product=items[0], quantity=1)
    by_name = ("OrderCountNode", "n", {"filter": {"product.name": "P0"}})
    with caching():
        assert warm(lambda: run([by_name])["n"]["count"]) == 1
        Product.objects.filter(pk=items[0].pk).update(name="renamed")
        assert run([by_name])["n"]["count"] == 0


def test_read_after_a_write_in_the_same_workflow_skips_the_cache() -> None:
    products()
    read = ("ProductReadNode", "read", {"conditions": {"sku": "S-1"}})
    with caching():
        warm(lambda: run([read]))
        bypass = cache_count("bypass")
        results = run(
            [("ProductUpdateNode", "up", {"conditions": {"sku": "S-1"}, "fields": {"name": "new"}}), read]
        )
        assert results["read"]["name"] == "new"
        assert cache_count("bypass") == bypass + 1
        assert run([read])["read"]["name"] == "new"


def test_read_inside_an_outer_transaction_that_wrote_sees_the_write() -> None:
    from shop.models import Product

    products()
    with caching():
        warm(cached_list)
        with transaction.atomic():
            Product.objects.filter(sku="S-0").update(name="inside")
            assert cached_list()[0]["name"] == "inside"
            transaction.set_rollback(True)
        assert cached_list()[0]["name"] == "P0"


def test_rolled_back_workflow_leaves_the_cache_valid() -> None:
    products()
    with caching():
        warm(cached_list)
        failing = [
            ("ProductUpdateNode", "up", {"conditions": {"sku": "S-0"}, "fields": {"name": "gone"}}),
            ("ProductReadNode", "missing", {"id": 999_999}),
        ]
        with pytest.raises(NodeExecutionError):
            run(failing)
        hits = cache_count("hit")
        assert cached_list() == fresh_list()
        assert cache_count("hit") == hits + 1, "nothing committed: the entry stays valid"


# Every kind of write the issue lists, then a read that must not be stale --------------------------


def _write_node(p: Any) -> None:
    run([("ProductUpdateNode", "u", {"id": p.pk, "fields": {"name": "by-node"}})])


def _save(p: Any) -> None:
    p.name = "by-save"
    p.save()


def _delete(p: Any) -> None:
    p.delete()


def _bulk_create(p: Any) -> None:
    from shop.models import Product

    Product.objects.bulk_create([Product(name="bulk", sku="S-00", price=1)])


def _bulk_update(p: Any) -> None:
    from shop.models import Product

    p.name = "bulk-updated"
    Product.objects.bulk_update([p], ["name"])


def _queryset_update(p: Any) -> None:
    from shop.models import Product

    Product.objects.filter(pk=p.pk).update(name="qs-update")


def _queryset_delete(p: Any) -> None:
    from shop.models import Product

    Product.objects.filter(pk=p.pk).delete()


def _bulk_node(p: Any) -> None:
    # COPY on PostgreSQL (psycopg's copy(), which Django's execute wrappers never see).
    run([("ProductBulkCreateNode", "b", {"data": [{"name": "copied", "sku": "S-000", "price": "2"}]})])


def _bulk_upsert_node(p: Any) -> None:
    run(
        [
            (
                "ProductBulkUpsertNode",
                "b",
                {
                    "data": [{"name": "upserted", "sku": p.sku, "price": "3"}],
                    "conflict_on": ["sku"],
                },
            )
        ]
    )


def _raw_cursor(p: Any) -> None:
    # SQL through Django's cursor is seen without help.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET name = %s WHERE id = %s", ["raw", p.pk])


def _raw_driver_and_touch(p: Any) -> None:
    # The driver's own cursor bypasses Django entirely: the writer reports it with touch().
    connection.ensure_connection()
    raw = connection.connection.cursor()
    placeholder = "%s" if connection.vendor == "postgresql" else "?"
    raw.execute(f"UPDATE shop_product SET name = 'driver' WHERE id = {placeholder}", [p.pk])
    raw.close()
    if connection.vendor == "sqlite":
        connection.connection.commit()
    cache.touch("shop.Product")


WRITES = [
    _write_node,
    _save,
    _delete,
    _bulk_create,
    _bulk_update,
    _queryset_update,
    _queryset_delete,
    _bulk_node,
    _bulk_upsert_node,
    _raw_cursor,
    _raw_driver_and_touch,
]


@pytest.mark.parametrize("backend", ["locmem", "redis"])
@pytest.mark.parametrize("write", WRITES, ids=[w.__name__.strip("_") for w in WRITES])
def test_no_stale_read_after_write(write: Any, backend: str) -> None:
    items = products()
    with caching(backend):
        warm(cached_list)
        write(items[1])
        assert cached_list() == fresh_list()
        assert cached_list() == fresh_list()


def test_copy_path_is_the_one_exercised_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    from django_dataflow.nodes.pg_bulk import copy_unavailable
    from django_dataflow.registry import get_node_class

    assert copy_unavailable(get_node_class("ProductBulkCreateNode"), "default") is None


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_interleaved_writes_never_give_a_stale_read(backend: str) -> None:
    """A seeded random mix of every write kind and cached reads of four node types, each read
    compared with the database (through a cache-less node)."""
    from shop.models import Product

    rng = random.Random(8)
    products(6)
    reads = [
        LIST,
        ("ProductCountNode", "cheap", {"filter": {"stock": {"$gte": 2}}}),
        ("ProductAggregateNode", "cheap", {"pipeline": [{"$group": {"_id": None, "s": {"$sum": "$stock"}}}]}),
        ("ProductListNode", "cheap", {"order_by": ["-stock", "sku"], "limit": 3, "fields": ["sku", "stock"]}),
    ]
    writes = [w for w in WRITES if w not in (_bulk_create, _bulk_node)]
    counter = [0]

    def insert(p: Any) -> None:
        counter[0] += 1
        row = {"name": f"new{counter[0]}", "sku": f"N-{counter[0]}", "price": "5", "stock": counter[0]}
        if rng.random() < 0.5:
            Product.objects.bulk_create([Product(**row)])
        else:
            run([("ProductBulkCreateNode", "b", {"data": [row]})])

    writes.append(insert)
    hits = cache_count("hit")
    with caching(backend):
        for _step in range(120):
            node = rng.choice(reads)
            for _ in range(rng.randint(1, 3)):
                got = run([node])["cheap"]
                assert got == run([(node[0], node[1], {**node[2], "cache": False})])["cheap"]
            if rng.random() < 0.3:
                target = Product.objects.order_by("?").first()
                if target is None:
                    products(3)
                    continue
                rng.choice(writes)(target)
                # Keep the stock column varied after name-only writes.
                Product.objects.filter(pk=target.pk).update(stock=rng.randint(0, 5))
    assert cache_count("hit") > hits, "the mix must have been answered from the cache sometimes"


@pytest.mark.postgres
def test_write_committed_by_another_process_is_seen() -> None:
    """Another Python process (its own connection and cache client) updates a row; the next read
    here is current."""
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    from tests.cache_support import ROOT_DIR

    products()
    with caching("redis"):
        warm(cached_list)
        db = settings.DATABASES["default"]
        url = (
            f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        script = (
            "import json, sys, django\n"
            "django.setup()\n"
            "from django.test.utils import override_settings\n"
            "with override_settings(CACHES=json.loads(sys.argv[1]), DATAFLOW=json.loads(sys.argv[2])):\n"
            "    from shop.models import Product\n"
            "    Product.objects.filter(sku='S-2').update(name='other-process')\n"
        )
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "PYTHONPATH": f"{ROOT_DIR}{os.pathsep}{ROOT_DIR / 'testproject'}",
        }
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(settings.CACHES), json.dumps(settings.DATAFLOW)],
            env=env,
            check=True,
            cwd=ROOT_DIR,
            timeout=60,
        )
        names = [r["name"] for r in cached_list()]
        assert "other-process" in names
        assert cached_list() == fresh_list()


def test_table_map_includes_many_to_many_and_dataflow_models() -> None:
    tables = sqlwatch.table_models()
    assert tables["shop_product"] == ("shop.Product",)
    assert "auth.User_groups" in tables["auth_user_groups"]
    assert "django_dataflow_workflowrun" not in tables, "the app's own tables are read by no node"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('INSERT INTO "shop_product" ("name") VALUES (%s)', ("shop.Product",)),
        ('UPDATE "shop_order" SET "quantity" = 1', ("shop.Order",)),
        ('DELETE FROM "shop_customer" WHERE 1', ("shop.Customer",)),
        ('WITH x AS (SELECT 1) UPDATE "public"."shop_product" SET x = 1', ("shop.Product",)),
        ("update shop_product set name = 'a'", ("shop.Product",)),
        ('SELECT * FROM "shop_product" FOR UPDATE', ()),
        ("SAVEPOINT s1", ()),
        (
            'INSERT INTO "shop_stocklevel" SELECT * FROM stage ON CONFLICT DO UPDATE SET quantity = 1',
            ("shop.StockLevel",),
        ),
    ],
)
def test_written_tables_are_recognised(sql: str, expected: tuple[str, ...]) -> None:
    assert sqlwatch.written_models(sql) == expected


def test_user_run_with_static_params_is_cached(admin_user: Any) -> None:
    products()
    with caching():
        hits = cache_count("hit")
        for _ in range(2):
            assert run([LIST], user=admin_user)["cheap"]["records"] == fresh_list()
        assert cache_count("hit") == hits + 1


def test_user_run_with_params_from_inputs_is_never_cached(admin_user: Any) -> None:
    """Its permission checks happen while the node builds its query: a hit would skip them."""
    products()
    templated = ("ProductListNode", "cheap", {"filter": {"price": {"$lt": "{{most}}"}}, "fields": ["sku"]})
    with caching():
        hits, bypass = cache_count("hit"), cache_count("bypass")
        for _ in range(3):
            run([templated], inputs={"most": 50}, user=admin_user)
        assert cache_count("hit") == hits
        assert cache_count("bypass") == bypass + 3
        for _ in range(2):
            run([templated], inputs={"most": 50})  # trusted code (user=None) may use the cache
        assert cache_count("hit") == hits + 1


def test_row_filtered_model_is_not_cached_for_users(admin_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.models import Q

    from django_dataflow.registry import get_entry

    products()
    monkeypatch.setattr(get_entry("shop.Product"), "row_filter", lambda user: Q(stock__gte=2))
    with caching():
        hits = cache_count("hit")
        for _ in range(3):
            records = run([LIST], user=admin_user)["cheap"]["records"]
            assert [r["sku"] for r in records] == ["S-2", "S-3"]
        assert cache_count("hit") == hits


def test_read_models_come_from_every_quoted_name_of_the_sql() -> None:
    with sqlwatch.recording() as seen:
        sqlwatch._watch(
            lambda *a: None,
            'SELECT 1 FROM "shop_order" INNER JOIN `shop_product` ON 1 '
            'WHERE x IN (SELECT 1 FROM "auth_user")',
            None,
            False,
            {},
        )
    assert sqlwatch.read_models(seen) == {"shop.Order", "shop.Product", "auth.User"}
