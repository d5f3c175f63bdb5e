"""Audit entries: one per write op (per row with audit="rows"), in the run's transaction, redacted."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_dataflow
from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError
from django_dataflow.models import AuditEntry
from django_dataflow.registry import get_entry
from tests.cache_support import dataflow_settings
from tests.conftest import build, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit_all() -> Iterator[None]:
    with override_settings(DATAFLOW=dataflow_settings(AUDIT=True)):
        yield


@pytest.fixture
def rows_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_entry("shop.Product"), "audit", "rows")


def entries(**filters: Any) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def seed(n: int = 3) -> list[Any]:
    from shop.models import Product

    return [
        Product.objects.create(name=f"P{i}", sku=f"S-{i}", price=Decimal(10 + i), stock=i) for i in range(n)
    ]


def test_nothing_is_audited_by_default() -> None:
    run([("ProductCreateNode", "c", {"name": "Lamp", "sku": "L", "price": "1"})])
    assert AuditEntry.objects.count() == 0


def test_create_entry_names_run_node_actor_and_values(audit_all: None, admin_user: Any) -> None:
    results, run_id = LocalRuntime().execute(
        build([("ProductCreateNode", "make", {"name": "Lamp", "sku": "L", "price": "19.99"})]),
        user=admin_user,
    )
    (entry,) = entries()
    assert (entry.run_id, entry.node_id, entry.model, entry.action) == (
        run_id,
        "make",
        "shop.Product",
        "create",
    )
    assert entry.object_pk == str(results["make"]["id"])
    assert entry.actor == str(admin_user.pk)
    assert entry.tenant == ""
    assert entry.count == 1
    assert entry.changes["name"] == [None, "Lamp"]
    assert entry.changes["price"] == [None, "19.99"]


def test_update_entry_holds_old_and_new_of_changed_fields_only(audit_all: None) -> None:
    item = seed(1)[0]
    run([("ProductUpdateNode", "u", {"id": item.pk, "fields": {"name": "Renamed", "stock": 0}})])
    (entry,) = entries(action="update")
    assert entry.object_pk == str(item.pk)
    assert entry.changes["name"] == ["P0", "Renamed"]
    assert "stock" not in entry.changes, "stock was 0 and stays 0: not a change"
    assert "sku" not in entry.changes


def test_delete_entry_keeps_the_deleted_values(audit_all: None) -> None:
    item = seed(1)[0]
    run([("ProductDeleteNode", "d", {"id": item.pk})])
    (entry,) = entries(action="delete")
    assert entry.object_pk == str(item.pk)
    assert entry.changes["sku"] == ["S-0", None]


@pytest.mark.parametrize(
    ("node", "action", "count", "summary"),
    [
        (
            (
                "ProductBulkCreateNode",
                "b",
                {"data": [{"name": f"n{i}", "sku": f"B{i}", "price": "1"} for i in range(5)]},
            ),
            "bulk_create",
            5,
            {"rows": 5},
        ),
        (
            ("ProductBulkUpdateNode", "b", {"filter": {"stock": {"$gte": 1}}, "fields": {"active": False}}),
            "bulk_update",
            2,
            {"filter": {"stock": {"$gte": 1}}, "fields": {"active": False}},
        ),
        (
            ("ProductBulkDeleteNode", "b", {"filter": {"stock": {"$lt": 2}}}),
            "bulk_delete",
            2,
            {"filter": {"stock": {"$lt": 2}}},
        ),
        (
            (
                "ProductBulkUpsertNode",
                "b",
                {
                    "data": [
                        {"name": "x", "sku": "S-0", "price": "9"},
                        {"name": "y", "sku": "NEW", "price": "9"},
                    ],
                    "conflict_on": ["sku"],
                },
            ),
            "bulk_upsert",
            2,
            {"rows": 2, "conflict_on": ["sku"]},
        ),
    ],
    ids=["bulk_create", "bulk_update", "bulk_delete", "bulk_upsert"],
)
def test_bulk_op_is_one_entry_with_its_row_count(
    audit_all: None, node: tuple, action: str, count: int, summary: dict[str, Any]
) -> None:
    seed()
    run([node])
    (entry,) = entries()
    assert (entry.action, entry.count, entry.object_pk) == (action, count, "")
    assert entry.changes == summary


def test_rows_mode_writes_one_entry_per_row(rows_mode: None) -> None:
    items = seed()
    run(
        [
            (
                "ProductBulkCreateNode",
                "b",
                {"data": ({"name": f"n{i}", "sku": f"B{i}", "price": "1"} for i in range(4))},
            )
        ]
    )
    created = entries(action="bulk_create")
    assert len(created) == 4
    assert created[0].changes["sku"] == [None, "B0"]
    run(
        [
            (
                "ProductBulkUpdateNode",
                "b",
                {"filter": {"sku": {"$in": ["S-1", "S-2"]}}, "fields": {"stock": 50}},
            )
        ]
    )
    updated = entries(action="bulk_update")
    assert {e.object_pk for e in updated} == {str(items[1].pk), str(items[2].pk)}
    assert all(e.changes["stock"][1] == 50 for e in updated)
    run([("ProductBulkUpdateNode", "b", {"data": [{"id": items[0].pk, "name": "by-data"}]})])
    (by_data,) = entries(action="bulk_update", object_pk=str(items[0].pk))
    assert by_data.changes["name"] == ["P0", "by-data"]
    run([("ProductBulkDeleteNode", "b", {"ids": [items[0].pk]})])
    (deleted,) = entries(action="bulk_delete")
    assert deleted.object_pk == str(items[0].pk)
    assert deleted.changes["name"] == ["by-data", None]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_run_leaves_no_entry_and_committed_run_has_them(audit_all: None) -> None:
    failing = [
        ("ProductCreateNode", "c", {"name": "Lamp", "sku": "L", "price": "1"}),
        ("ProductBulkCreateNode", "b", {"data": [{"name": "x", "sku": "B", "price": "1"}]}),
        ("ProductReadNode", "missing", {"id": 999_999}),
    ]
    with pytest.raises(NodeExecutionError):
        run(failing)
    assert AuditEntry.objects.count() == 0
    run(failing[:2])
    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == ["bulk_create", "create"]


@pytest.mark.django_db(transaction=True)
def test_entry_is_rolled_back_with_an_outer_transaction(audit_all: None) -> None:
    from django.db import transaction

    with transaction.atomic():
        run([("ProductCreateNode", "c", {"name": "Lamp", "sku": "L", "price": "1"})])
        assert AuditEntry.objects.count() == 1
        transaction.set_rollback(True)
    assert AuditEntry.objects.count() == 0


def test_audit_redact_and_exclude_fields_never_reach_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    from shop.models import Customer

    entry = get_entry("shop.Customer")
    monkeypatch.setattr(entry, "exclude_fields", frozenset({"metadata"}))
    settings = dataflow_settings(AUDIT=True, AUDIT_REDACT=["shop.Customer.email", "tier"])
    with override_settings(DATAFLOW=settings):
        customer = Customer.objects.create(name="Ada", email="ada@example.com", metadata={"secret": "s3"})
        run(
            [
                (
                    "CustomerUpdateNode",
                    "u",
                    {"id": customer.pk, "fields": {"email": "new@example.com", "tier": "gold"}},
                )
            ]
        )
        run(
            [
                (
                    "CustomerBulkUpdateNode",
                    "b",
                    {"filter": {"email": "new@example.com"}, "fields": {"tier": "x"}},
                )
            ]
        )
        run([("CustomerDeleteNode", "d", {"id": customer.pk})])
    text = repr(list(AuditEntry.objects.values_list("changes", flat=True)))
    for secret in ("ada@example.com", "new@example.com", "gold", "s3", "secret"):
        assert secret not in text
    update = AuditEntry.objects.get(action="update")
    assert update.changes["email"] == "[redacted]"
    bulk = AuditEntry.objects.get(action="bulk_update")
    assert bulk.changes == {"filter": {"email": "[redacted]"}, "fields": {"tier": "[redacted]"}}


def test_model_opt_out_beats_the_global_setting(audit_all: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_entry("shop.Product"), "audit", False)
    run([("ProductCreateNode", "c", {"name": "Lamp", "sku": "L", "price": "1"})])
    assert AuditEntry.objects.count() == 0


def test_per_model_opt_in_without_the_global_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_entry("shop.Product"), "audit", True)
    run(
        [
            ("ProductCreateNode", "c", {"name": "Lamp", "sku": "L", "price": "1"}),
            ("CustomerCreateNode", "k", {"name": "Ada", "email": "a@example.com"}),
        ]
    )
    assert list(AuditEntry.objects.values_list("model", flat=True)) == ["shop.Product"]


def test_register_refuses_an_unknown_audit_mode() -> None:
    from shop.models import Product

    with pytest.raises(ImproperlyConfigured, match=r"audit of shop\.Product must be True, False, \"rows\""):
        django_dataflow.register(Product, audit="sometimes")
    assert get_entry("shop.Product").audit is None


@pytest.mark.django_db(transaction=True)
def test_many_row_entries_are_written_and_rolled_back_like_few(rows_mode: None) -> None:
    """Above 100 entries PostgreSQL gets them by COPY; both paths hold the same values."""
    data = [{"name": f"n{i}", "sku": f"M{i}", "price": "1.25"} for i in range(150)]
    failing = [
        ("ProductBulkCreateNode", "b", {"data": data}),
        ("ProductReadNode", "missing", {"id": 999_999}),
    ]
    with pytest.raises(NodeExecutionError):
        run(failing)
    assert AuditEntry.objects.count() == 0
    _results, run_id = LocalRuntime().execute(build(failing[:1]))
    made = entries()
    assert len(made) == 150
    assert {e.run_id for e in made} == {run_id}
    assert {(e.node_id, e.model, e.action, e.count) for e in made} == {
        ("b", "shop.Product", "bulk_create", 1)
    }
    assert made[7].changes == {"name": [None, "n7"], "sku": [None, "M7"], "price": [None, "1.25"]}
    assert made[0].created_at is not None


@pytest.mark.django_db(transaction=True)
def test_celery_runs_write_the_same_entries(audit_all: None) -> None:
    """CeleryRuntime goes through the same executor (here eagerly: the test project has no broker)."""
    from django_dataflow import CeleryRuntime

    _results, run_id = CeleryRuntime().execute(
        build([("ProductCreateNode", "c", {"name": "Lamp", "sku": "CEL", "price": "1"})])
    )
    (entry,) = entries()
    assert (entry.run_id, entry.node_id, entry.action) == (str(run_id), "c", "create")


def test_admin_lists_entries_read_only(audit_all: None, admin_client: Any) -> None:
    run([("ProductCreateNode", "c", {"name": "Lamp", "sku": "ADM", "price": "1"})])
    entry = AuditEntry.objects.get()
    page = admin_client.get("/admin/django_dataflow/auditentry/?action__exact=create")
    assert page.status_code == 200
    assert b"shop.Product" in page.content
    assert admin_client.get("/admin/django_dataflow/auditentry/add/").status_code == 403
    detail = admin_client.get(f"/admin/django_dataflow/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    admin_client.post(f"/admin/django_dataflow/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
