"""The result cache on real schemas: the same query in two tenants never shares an entry, and a
write in one tenant leaves the other tenant's entries alone (the keys carry the schema)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from django_dataflow import LocalRuntime
from shop.models import Product
from tests.cache_support import cache_count, caching
from tests.conftest import build
from tests.tenants.test_isolation import seed

pytestmark = pytest.mark.postgres


def names(tenant: str) -> list[str]:
    """A cacheable List of every product, run in the tenant's schema."""
    workflow = build([("ProductListNode", "n", {"order_by": ["id"]})])
    results, _ = LocalRuntime().execute(workflow, tenant=tenant)
    return [record["name"] for record in results["n"]["records"]]


def test_each_tenant_reads_its_own_rows_through_the_cache(tenants: tuple[str, ...]) -> None:
    seed("alpha", 3)
    seed("beta", 4)
    with caching():
        for _ in range(2):  # the second round is answered by the cache
            assert names("alpha") == ["alpha-p1", "alpha-p2", "alpha-p3"]
            assert names("beta") == ["beta-p1", "beta-p2", "beta-p3", "beta-p4"]
        assert cache_count("hit", "alpha") >= 1 and cache_count("hit", "beta") >= 1

        with schema_context("beta"):  # an ORM write in beta, outside any node
            Product.objects.filter(sku="S-1").update(name="beta-renamed")
        alpha_hits = cache_count("hit", "alpha")
        assert names("beta")[0] == "beta-renamed"  # beta's entry was invalidated
        assert names("alpha")[0] == "alpha-p1"
        assert cache_count("hit", "alpha") == alpha_hits + 1  # alpha's entry survived beta's write
