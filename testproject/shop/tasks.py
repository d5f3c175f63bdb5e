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


@shared_task(name="shop.create_product_recorded", acks_late=True, reject_on_worker_lost=True)
def create_product_recorded(run_id: str, name: str, sku: str, price: str) -> int | None:
    """The least a hand-written task does with CeleryRuntime's guarantees (the benchmark's floor).

    The caller inserted the run's row before sending; here the run is claimed (one statement,
    committed without waiting for the WAL flush, as CeleryRuntime's claim) so that a dead attempt
    stays counted, then the insert and the run's success commit together.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from django_dataflow.models import WorkflowRun

    table = connection.ops.quote_name(WorkflowRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH local AS (SELECT set_config('synchronous_commit', 'off', true)) "
            f"UPDATE {table} SET status = 'running', attempts = attempts + 1, started_at = %s "
            f"FROM local WHERE run_id = %s AND status IN ('pending', 'running')",
            [timezone.now(), run_id],
        )
        if not cursor.rowcount:
            return None
    with transaction.atomic():
        pk = Product.objects.create(name=name, sku=sku, price=price).pk
        WorkflowRun.objects.filter(pk=run_id).update(
            status="succeeded", results={"pk": pk}, finished_at=timezone.now()
        )
    return pk
