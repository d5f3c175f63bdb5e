"""manage.py shop_celery_demo: a workflow through CeleryRuntime, eagerly when no broker is set."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand

from django_dataflow import CeleryRuntime, WorkflowBuilder
from django_dataflow.celery import is_eager


class Command(BaseCommand):
    """Submits a workflow to CeleryRuntime and waits for it (a worker, or this process)."""

    help = "Run a sample workflow through CeleryRuntime and show its WorkflowRun row."

    def handle(self, *args: Any, **options: Any) -> None:
        """Submit, wait, print the run; with no CELERY_BROKER_URL it runs in this process."""
        sku = f"C-{uuid.uuid4().hex[:6]}"
        wf = WorkflowBuilder()
        wf.add_node("ProductCreateNode", "lamp", {"name": "Lamp", "price": "19.99", "sku": sku})
        wf.add_node("ProductBulkUpdateNode", "restock", {"filter": {"sku": sku}, "fields": {"stock": 10}})
        mode = "eagerly in this process (no broker configured)" if is_eager() else "on a Celery worker"
        handle = CeleryRuntime().submit(wf.build())
        self.stdout.write(f"CeleryRuntime run {handle.run_id}, {mode}:")
        self.stdout.write(f"  results: {handle.wait(timeout=60)}")
        run = handle.record()
        self.stdout.write(f"  WorkflowRun: {run.status}, {run.attempts} attempt(s), runtime {run.runtime}")
