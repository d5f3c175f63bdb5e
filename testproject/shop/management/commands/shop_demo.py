"""manage.py shop_demo: build and run a sample workflow, then show that a failure rolls back."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand

from django_dataflow import LocalRuntime, NodeExecutionError, WorkflowBuilder
from shop.models import Product


class Command(BaseCommand):
    """Runs the README's sample workflow on the configured database."""

    help = "Run a sample django-dataflow workflow and print its results."

    def handle(self, *args: Any, **options: Any) -> None:
        """Create a customer, a product and an order; list and count; then fail on purpose."""
        tag = uuid.uuid4().hex[:6]
        wf = WorkflowBuilder()
        wf.add_node("CustomerCreateNode", "customer", {"name": "Ada", "email": f"ada-{tag}@example.com"})
        wf.add_node("ProductCreateNode", "lamp", {"name": "Lamp", "price": "19.99", "sku": f"L-{tag}"})
        wf.add_node("OrderCreateNode", "order", {"quantity": "{{quantity}}"})
        wf.add_connection("customer", "id", "order", "customer_id")
        wf.add_connection("lamp", "id", "order", "product_id")
        wf.add_node(
            "ProductListNode",
            "cheap",
            {"filter": {"price": {"$lt": 50}}, "order_by": ["-created_at"], "limit": 3,
             "fields": ["sku", "price"]},
        )
        wf.add_node("OrderCountNode", "orders", {"filter": {"customer.email": {"$ne": None}}})
        results, run_id = LocalRuntime().execute(wf.build(), inputs={"quantity": 2})
        self.stdout.write(f"Workflow run {run_id} succeeded:")
        self.stdout.write(json.dumps(results, indent=2))

        before = Product.objects.count()
        failing = WorkflowBuilder()
        failing.add_node("ProductCreateNode", "ok", {"name": "Desk", "price": "120", "sku": f"D-{tag}"})
        failing.add_node("ProductCreateNode", "bad", {"name": "Chair", "price": "cheap", "sku": f"C-{tag}"})
        try:
            LocalRuntime().execute(failing.build())
        except NodeExecutionError as exc:
            after = Product.objects.count()
            self.stdout.write(f"\nA failing workflow: {exc}")
            self.stdout.write(
                f"Products before: {before}, after: {after} (node 'ok' was rolled back with it)."
            )
