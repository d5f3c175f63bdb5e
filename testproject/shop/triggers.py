"""The shop's model-change triggers, as a project would write them (used by the trigger tests).

Registered by ShopConfig.ready() when SHOP_TRIGGERS=1 (the trigger tests' worker processes), and by
the tests themselves in the test process.
"""

from __future__ import annotations

import django_dataflow
from django_dataflow.triggers.model_events import ModelTrigger

from .models import Customer, Product, StockLevel


def register() -> list[ModelTrigger]:
    """Welcome new customers (and, loop guard permitting, changed ones); audit created products and
    created or updated stock levels (BulkUpsert's split of its keys)."""
    return [
        django_dataflow.on_commit_of(
            Customer, "created", definition="welcome", inputs=lambda customer: {"email": customer.email}
        ),
        # "welcome" itself updates the customer: the loop guard keeps this from firing it again.
        django_dataflow.on_commit_of(Customer, "updated", definition="welcome"),
        django_dataflow.on_commit_of(Product, "created", definition="audit"),
        django_dataflow.on_commit_of(StockLevel, "created", definition="stock-audit"),
        django_dataflow.on_commit_of(StockLevel, "updated", definition="stock-audit"),
    ]
