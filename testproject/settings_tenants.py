"""The test project with django-tenants: one PostgreSQL schema per tenant (docs/tenants.md).

DATABASE_URL must name a PostgreSQL database. The shop app is a tenant app (its tables exist in
every tenant's schema only); probe is both shared and per tenant; django_dataflow is both, with
DataflowTenantRouter keeping the registry and the definitions in the public schema.
"""

import os
from importlib.util import find_spec

from testproject.settings import *  # noqa: F403
from testproject.settings import DATABASES, MIDDLEWARE

SHARED_APPS = [
    "django_tenants",
    "customers",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Schedules are PeriodicTask rows in the public schema, where beat reads them (docs/triggers.md);
    # installed with the schedules extra, as in testproject.settings.
    *(["django_celery_beat"] if find_spec("django_celery_beat") else []),
    "django_dataflow",
    "probe",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django_dataflow",
    "shop",
    "probe",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
# SET search_path only when the schema changes, not before every statement (django-tenants'
# default): the per-run cost of a tenant switch is then one SET (benchmarks/tenants.py).
TENANT_LIMIT_SET_CALLS = True

if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("testproject.settings_tenants needs DATABASE_URL=postgres://... (schemas)")
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = [
    "django_dataflow.tenant_router.DataflowTenantRouter",
    "django_tenants.routers.TenantSyncRouter",
]
MIDDLEWARE = ["django_tenants.middleware.main.TenantMainMiddleware", *MIDDLEWARE]
