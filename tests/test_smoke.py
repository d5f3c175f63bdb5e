"""The README example end to end: create, connect, list, count."""

from decimal import Decimal

import pytest

from shop.models import Order, Product
from tests.conftest import run

pytestmark = pytest.mark.django_db


def test_readme_workflow_creates_connected_rows() -> None:
    results = run(
        [
            ("ProductCreateNode", "create", {"name": "Lamp", "price": "19.99", "sku": "L-1"}),
            ("OrderCreateNode", "order", {"quantity": 2}),
            (
                "ProductListNode",
                "cheap",
                {"filter": {"price": {"$lt": 50}}, "order_by": ["-created_at"], "limit": 10},
            ),
        ],
        [("create", "id", "order", "product_id")],
    )
    product = Product.objects.get()
    assert product.price == Decimal("19.99")
    assert results["create"]["price"] == "19.99"
    assert results["order"]["product_id"] == product.pk
    assert Order.objects.get().product_id == product.pk
    assert results["cheap"]["count"] == 1
    assert results["cheap"]["records"][0]["sku"] == "L-1"
