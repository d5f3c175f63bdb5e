"""A plain Celery task, the baseline of benchmarks/celery_roundtrip.py."""

from celery import shared_task

from shop.models import Product


@shared_task(name="shop.create_product")
def create_product(name: str, sku: str, price: str) -> int:
    """Insert one product with the ORM, as a one-node ProductCreateNode workflow does."""
    return Product.objects.create(name=name, sku=sku, price=price).pk
