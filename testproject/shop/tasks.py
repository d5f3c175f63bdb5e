"""A plain Celery task, the baseline of benchmarks/celery_roundtrip.py."""

from celery import shared_task

from shop.models import Product


@shared_task(name="shop.create_product")
def create_product(name: str, sku: str, price: str) -> int:
    """Insert one product with the ORM, as a one-node ProductCreateNode workflow does."""
    return Product.objects.create(name=name, sku=sku, price=price).pk


@shared_task(name="shop.create_product_acks_late", acks_late=True, reject_on_worker_lost=True)
def create_product_acks_late(name: str, sku: str, price: str) -> int:
    """The same insert, acknowledged after it ran, as CeleryRuntime's task is (crash-safe delivery)."""
    return Product.objects.create(name=name, sku=sku, price=price).pk
