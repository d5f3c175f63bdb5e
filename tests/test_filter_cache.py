"""The translator keeps translations: the same filter gives the same Q, and whatever a translation
depends on (settings, the active time zone, the model entry) is part of the key. The List node keeps
the querysets it built the same way, never for a user's run or a manager with its own get_queryset()."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import models
from django.test.utils import override_settings
from django.utils import timezone

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes import listing
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


# Built List querysets ------------------------------------------------------------------------------

SMALL_PAGE = {"filter": {"stock": {"$gte": 1}}, "order_by": ["-stock"], "limit": 2, "with_total": True}


def shelf() -> None:
    for i in range(5):
        Product.objects.create(name=f"p{i}", sku=f"S-{i}", price="1", stock=i)


def test_a_list_reuses_the_queryset_it_built_and_sees_new_rows() -> None:
    shelf()
    listing._BUILT.clear()
    first = run([("ProductListNode", "l", SMALL_PAGE)])["l"]
    assert len(listing._BUILT) == 1
    Product.objects.create(name="new", sku="S-9", price="1", stock=9)
    again = run([("ProductListNode", "l", SMALL_PAGE)])["l"]
    assert len(listing._BUILT) == 1  # the same entry served the second run...
    assert [r["stock"] for r in first["records"]] == [4, 3] and first["total"] == 4
    assert [r["stock"] for r in again["records"]] == [9, 4] and again["total"] == 5  # ...freshly evaluated
    cursor = again["next_cursor"]
    after = run([("ProductListNode", "l", {**SMALL_PAGE, "after": cursor})])["l"]
    assert [r["stock"] for r in after["records"]] == [3, 2]
    assert len(listing._BUILT) == 1  # the cursor filters a clone; it is not part of the key


def test_a_manager_with_its_own_get_queryset_is_asked_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    shelf()
    threshold = [0]

    class Moving(models.Manager):
        def get_queryset(self) -> models.QuerySet:
            return super().get_queryset().filter(stock__gte=threshold[0])

    monkeypatch.setattr(Product._default_manager, "__class__", Moving)
    listing._BUILT.clear()
    seen = []
    for threshold[0] in (0, 3):
        seen.append([r["stock"] for r in run([("ProductListNode", "l", {"limit": 10})])["l"]["records"]])
    assert seen == [[0, 1, 2, 3, 4], [3, 4]]
    assert listing._BUILT == {}


def test_a_run_for_a_user_builds_its_own_queryset() -> None:
    shelf()
    user = User.objects.create_user("viewer")
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    user = User.objects.get(pk=user.pk)
    listing._BUILT.clear()
    records = run([("ProductListNode", "l", SMALL_PAGE)], user=user)["l"]["records"]
    assert [r["stock"] for r in records] == [4, 3]
    assert listing._BUILT == {}
