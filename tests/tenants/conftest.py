"""The tenants suite: real django-tenants schemas on PostgreSQL (testproject.settings_tenants).

Run on its own, in the PostgreSQL pass of scripts/test:
    DJANGO_SETTINGS_MODULE=testproject.settings_tenants DATABASE_URL=postgres://.../NAME pytest tests/tenants

pytest-django creates test_<NAME> (migrate_schemas for the public schema); this conftest adds three
tenants (alpha, beta, gamma: one schema each, migrated). Tests do not use pytest-django's db
fixtures, whose flush would empty the tenant table while the schemas stay: `tenants` unblocks the
database and empties the tables of every schema before the test instead, and what tests write is
committed (a Celery worker process sees it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

TENANTS = ("alpha", "beta", "gamma")
#: Tables emptied before every test, in every schema where they exist.
TABLES = ("shop_order", "shop_shipment", "shop_stocklevel", "shop_product", "shop_customer",
          "probe_probe", "django_dataflow_workflowrun", "django_dataflow_workflowdefinition",
          "django_dataflow_definitionschedule", "django_dataflow_modeltriggerrule",
          "django_celery_beat_periodictask",
          "django_dataflow_auditentry", "django_dataflow_apitoken", "auth_user")


@pytest.fixture(scope="session")
def django_db_setup(request: Any, django_test_environment: Any, django_db_blocker: Any) -> Iterator[None]:
    """test_<NAME> (migrate_schemas for the public schema) plus the tenants' schemas, migrated.

    Created here rather than by pytest-django, which sets up only the databases its db fixtures
    and marks ask for, and this suite uses neither.
    """
    from django.test.utils import setup_databases, teardown_databases

    from customers.models import Client, Domain

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set()
        )
        for name in TENANTS:
            tenant = Client(schema_name=name, name=name.title())
            tenant.save(verbosity=0)
            Domain.objects.create(domain=f"{name}.test", tenant=tenant, is_primary=True)
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        teardown_databases(config, verbosity=0)


def schema_tables(schema: str) -> set[str]:
    """The tables of one schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def empty_all() -> None:
    """Empty the test tables of the public schema and every tenant's."""
    with connection.cursor() as cursor:
        for schema in ("public", *TENANTS):
            present = [t for t in TABLES if t in schema_tables(schema)]
            if present:
                tables = ", ".join(f'"{schema}"."{t}"' for t in present)
                cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def tenants(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[str, ...]]:
    """Database access with every schema's test tables empty; the connection starts and ends public."""
    assert "django_tenants" in settings.INSTALLED_APPS
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        empty_all()
        yield TENANTS
        connection.set_schema_to_public()


def schema_state(schema: str) -> dict[str, str]:
    """Row count and checksum of every shop/probe/run table in one schema (read by qualified name)."""
    state = {}
    with connection.cursor() as cursor:
        for table in sorted(schema_tables(schema)):
            if not table.startswith(("shop_", "probe_", "django_dataflow_workflowrun")):
                continue
            cursor.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')
            rows = cursor.fetchall()
            state[table] = f"{len(rows)}:{hashlib.sha256(repr(rows).encode()).hexdigest()}"
    return state


def rows(schema: str, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    """Every row of a table of one schema, by primary key."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {columns} FROM "{schema}"."{table}" ORDER BY 1')
        return cursor.fetchall()
