"""Fixtures of the security suite: a byte-for-byte snapshot of every table, users, row filters."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.db.models import Q

from django_dataflow.registry import get_entry
from shop.models import Customer, Order, Product


def database_state() -> dict[str, tuple[int, str]]:
    """(row count, SHA-256 of every row) of every table in the database, Django's own included.

    Rows are sorted by their repr, so the checksum does not depend on the order a table returns
    them in; the repr of each value (bytes, Decimals, datetimes) is exact.
    """
    state = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(row) for row in cursor.fetchall())
            state[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return state


@pytest.fixture
def untouched(seeded: dict[str, Any]) -> Iterator[dict[str, tuple[int, str]]]:
    """The seeded database; asserts at teardown that every table is byte-for-byte as it was."""
    before = database_state()
    yield before
    assert database_state() == before


@pytest.fixture
def seeded(db: Any) -> dict[str, Any]:
    """A few rows in every shop table and a user, so that a write would show in the checksums."""
    ada = Customer.objects.create(name="Ada", email="ada@example.com", metadata={"tier": "gold"})
    bob = Customer.objects.create(name="Bob", email="bob@example.com", metadata={})
    lamp = Product.objects.create(name="ada:Lamp", sku="L-1", price="19.99", stock=5)
    desk = Product.objects.create(name="bob:Desk", sku="D-1", price="120.00", stock=2)
    orders = [
        Order.objects.create(customer=ada, product=lamp, quantity=2, reference="R-1"),
        Order.objects.create(customer=bob, product=desk, quantity=1, reference="R-2"),
        Order.objects.create(customer=None, product=lamp, quantity=7, reference="R-3"),
    ]
    # A stored hash as Django writes it (not hashed here: PBKDF2 would cost a third of a second).
    admin = User.objects.create(
        username="root",
        email="root@example.com",
        is_superuser=True,
        password="pbkdf2_sha256$1000000$salt$secret-password-hash",
    )
    return {"ada": ada, "bob": bob, "lamp": lamp, "desk": desk, "orders": orders, "admin": admin}


def make_user(*codenames: str, username: str = "clerk", email: str = "") -> User:
    """A user holding the given permissions (reloaded, so Django's permission cache is fresh)."""
    user = User.objects.create_user(username, email or f"{username}@example.com")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)


ALL_SHOP = [
    f"{action}_{model}"
    for action in ("view", "add", "change", "delete")
    for model in ("customer", "product", "order", "stocklevel")
]


@pytest.fixture
def row_filters() -> Iterator[Callable[..., None]]:
    """Give registered models a row_filter for one test: row_filters(Product=fn, ...)."""
    saved: dict[Any, Any] = {}

    def apply(**filters: Callable[[Any], Q]) -> None:
        for label, function in filters.items():
            entry = get_entry(f"shop.{label}")
            saved.setdefault(entry, entry.row_filter)
            entry.row_filter = function

    yield apply
    for entry, function in saved.items():
        entry.row_filter = function


def own_products(user: Any) -> Q:
    """Products whose name starts with '<username>:'."""
    return Q(name__startswith=f"{user.username}:")


def own_orders(user: Any) -> Q:
    """Orders of the customer sharing the user's email (a row filter through a join)."""
    return Q(customer__email=user.email)


def own_customers(user: Any) -> Q:
    """The customer sharing the user's email."""
    return Q(email=user.email)
