"""The translator keeps translations: the same filter gives the same Q, and whatever a translation
depends on (settings, the active time zone, the model entry) is part of the key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.query import filters
from django_dataflow.registry import get_entry
from shop.models import Order, Product
from tests.conftest import run

pytestmark = pytest.mark.django_db

THREE_TERMS = {"stock": {"$gte": 1}, "price": {"$lt": 5}, "active": True}


def test_the_same_filter_is_translated_once() -> None:
    entry = get_entry(Product)
    first = filters.translate(entry, {"$or": [{"stock": {"$in": [1, 2]}}, {"name": "a"}]})
    again = filters.translate(entry, {"$or": [{"stock": {"$in": [1, 2]}}, {"name": "a"}]})
    other = filters.translate(entry, {"$or": [{"stock": {"$in": [1, 3]}}, {"name": "a"}]})
    assert again is first
    assert other is not first and other != first


def test_key_order_does_not_matter_but_values_and_types_do() -> None:
    entry = get_entry(Product)
    assert filters.translate(entry, {"stock": 1, "active": True}) is filters.translate(
        entry, {"active": True, "stock": 1}
    )
    assert filters.translate(entry, {"stock": 1}) is not filters.translate(entry, {"stock": 2})


def test_a_lower_limit_applies_to_a_filter_translated_before() -> None:
    entry = get_entry(Product)
    filters.translate(entry, THREE_TERMS)
    lowered = {**settings.DATAFLOW, "MAX_FILTER_TERMS": 2}
    with override_settings(DATAFLOW=lowered), pytest.raises(WorkflowValidationError) as info:
        filters.translate(entry, THREE_TERMS)
    assert "MAX_FILTER_TERMS" in str(info.value)


def test_naive_datetimes_follow_the_active_time_zone(product: Product) -> None:
    placed = timezone.make_aware(dt.datetime(2026, 5, 1, 12, 0), dt.UTC)
    Order.objects.create(product=product, quantity=1, placed_at=placed)
    spec = {"placed_at": {"$lt": "2026-05-01T13:00:00"}}
    with timezone.override("UTC"):
        in_utc = run([("OrderCountNode", "c", {"filter": spec})])["c"]["count"]
    with timezone.override("Asia/Tokyo"):  # 13:00 in Tokyo is 04:00 UTC, before the order
        in_tokyo = run([("OrderCountNode", "c", {"filter": spec})])["c"]["count"]
    assert (in_utc, in_tokyo) == (1, 0)


def test_values_json_cannot_hold_are_still_translated() -> None:
    entry = get_entry(Product)
    q = filters.translate(entry, {"price": Decimal("2.50")})
    assert q.children == [("price__exact", Decimal("2.50"))]
    assert filters.translate(entry, {"price": Decimal("2.50")}) is not q  # built anew each time


def test_a_rejected_filter_is_not_kept() -> None:
    entry = get_entry(Product)
    for _ in range(2):
        with pytest.raises(WorkflowValidationError, match="unknown field 'nope'"):
            filters.translate(entry, {"nope": 1})
