"""Settings of the test project: SQLite (WAL) by default, PostgreSQL when DATABASE_URL is set."""

import json
import os
from importlib.util import find_spec
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "django-dataflow-testproject-not-secret"
# DJANGO_DEBUG=0 for benchmark workers: DEBUG keeps every query in memory.
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Schedules (docs/triggers.md): installed with the schedules extra; the Django 6.1 test pass
    # runs without it (django-celery-beat 2.9 declares Django < 6.1).
    *(["django_celery_beat"] if find_spec("django_celery_beat") else []),
    "django_dataflow",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The embedded default: SQLite in WAL mode with synchronous=NORMAL, which commits about 7x faster
# than the default rollback journal and lets readers run beside the one writer. IMMEDIATE
# transactions take the write lock up front, so concurrent workflows wait instead of failing.
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DATAFLOW_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": SQLITE_OPTIONS,
        }
    }

# Celery: Redis as broker and result backend when REDIS_URL (or CELERY_BROKER_URL) is set;
# without either, CeleryRuntime runs eagerly in process (the embedded default, docs/celery.md).
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ROUTES = {"django_dataflow.*": {"queue": "dataflow"}}
# One reserved message per worker process: with acks_late, a crash hands back only what ran.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless this
# is set (7.9 ms vs 3.0 ms per ORM insert task); CONN_MAX_AGE above still bounds a connection's life.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000")) or None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# visibility_timeout: how long Redis waits before handing the message of a run whose worker died
# to another worker; it should exceed the longest run. Tests lower it through the environment.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    **json.loads(os.environ.get("CELERY_BROKER_TRANSPORT_OPTIONS", "{}")),
}
CELERY_RESULT_EXPIRES = 86400
# Workflow schedules are django-celery-beat PeriodicTask rows (docs/triggers.md).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# The result cache: local memory by default; DATAFLOW_CACHE_REDIS_URL adds a django-redis alias
# "redis" (the cache tests use DATAFLOW_TEST_REDIS_URL for it themselves).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("DATAFLOW_CACHE_REDIS_URL"):
    CACHES["redis"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["DATAFLOW_CACHE_REDIS_URL"],
        # A slow Redis must not hold reads up: they fall back to the database after this.
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }

DATAFLOW = {
    # auth.User is not ours, so it is listed here instead of decorated; its password hash must
    # never leave the database through a node.
    "MODELS": [{"model": "auth.User", "exclude_fields": ["password"]}],
    # No periodic re-read of stored triggers: a test that counts queries must not see one at
    # random. The tests of the refresh set it themselves (a worker process through the environment).
    "TRIGGER_REFRESH_SECONDS": float(os.environ.get("DATAFLOW_TRIGGER_REFRESH_SECONDS", 0)) or None,
}
# Worker processes started by the tests send the runs they start (schedules, triggers, follow-ups)
# to the queue the test consumes.
if os.environ.get("DATAFLOW_TEST_QUEUE"):
    DATAFLOW["CELERY_QUEUE"] = os.environ["DATAFLOW_TEST_QUEUE"]
