"""Shared fixtures: building and running workflows, and snapshots of the database state."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from django_dataflow import LocalRuntime, WorkflowBuilder

# tests/tenants/ runs in its own pytest invocation with the django-tenants settings (scripts/test).
_TENANTS_PASS = os.environ.get("DJANGO_SETTINGS_MODULE") == "testproject.settings_tenants"
collect_ignore = [] if _TENANTS_PASS else ["tenants"]


def build(nodes: Iterable[tuple], connections: Iterable[tuple] = ()) -> Any:
    """A built workflow from (type, id, params) tuples and (src, path, dst, param) tuples."""
    builder = WorkflowBuilder()
    for node in nodes:
        builder.add_node(*node)
    for conn in connections:
        builder.add_connection(*conn)
    return builder.build()


def run(nodes: Iterable[tuple], connections: Iterable[tuple] = (), **kwargs: Any) -> dict[str, Any]:
    """Build and execute on LocalRuntime; returns the results."""
    results, _run_id = LocalRuntime().execute(build(nodes, connections), **kwargs)
    return results


def db_state() -> dict[str, str]:
    """Row count and a checksum of every row of every shop/auth/dataflow table."""
    state = {}
    labels = ("shop", "auth", "django_dataflow")
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label not in labels:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column)
            cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")
            rows = cursor.fetchall()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            state[model._meta.label] = f"{len(rows)}:{digest}"
    return state


@pytest.fixture
def unchanged_db(db: Any) -> Any:
    """Asserts at teardown that the test left the database exactly as it found it."""
    before = db_state()
    yield before
    assert db_state() == before


@pytest.fixture
def product(db: Any) -> Any:
    """One saved product."""
    from shop.models import Product

    return Product.objects.create(name="Lamp", sku="L-1", price="19.99", stock=5)


@pytest.fixture
def customer(db: Any) -> Any:
    """One saved customer."""
    from shop.models import Customer

    return Customer.objects.create(name="Ada", email="ada@example.com", metadata={"tier": "gold"})


def _on_postgresql() -> bool:
    from django.conf import settings

    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def require_celery_beat() -> None:
    """Schedules need django-celery-beat. Its releases lag Django's (2.9 declares Django < 6.1), so
    the Django 6.1 pass of scripts/test runs without it and says so with
    DATAFLOW_TEST_WITHOUT_CELERY_BEAT=1; anywhere else under CI=true a missing package fails."""
    from django.apps import apps

    if apps.is_installed("django_celery_beat"):
        return
    reason = "django-celery-beat is not installed (pip install -e '.[schedules]')"
    if os.environ.get("CI") == "true" and os.environ.get("DATAFLOW_TEST_WITHOUT_CELERY_BEAT") != "1":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked postgres or worker run in the PostgreSQL pass and are skipped on SQLite.

    A Celery worker is another process, and pytest-django's SQLite test database lives in this
    one's memory; the worker tests get their own checks for Redis (tests/celery_support.py).
    """
    if item.get_closest_marker("schedules") is not None:
        require_celery_beat()
    needs = [m.name for m in item.iter_markers() if m.name in ("postgres", "worker")]
    if needs and not _on_postgresql():
        reason = "needs PostgreSQL"
        if "worker" in needs:
            reason += " (a Celery worker process cannot share SQLite's in-memory test database)"
        pytest.skip(reason)
