"""Settings of the startup benchmark; the environment picks the variant (see startup.py).

BENCH_MODELS      number of generated models in bench_app (default 20)
BENCH_DATAFLOW    "1": django_dataflow installed and the models registered; "0": no django_dataflow
BENCH_REGISTER    "decorator" (register() in bench_app/models.py) or "settings" (DATAFLOW["MODELS"])
BENCH_DB_PATH     SQLite file inside a directory that does not exist, so any query would fail
"""

import os

COUNT = int(os.environ.get("BENCH_MODELS", "20"))
ENABLED = os.environ.get("BENCH_DATAFLOW") == "1"
VIA_SETTINGS = os.environ.get("BENCH_REGISTER", "decorator") == "settings"

SECRET_KEY = "django-dataflow-benchmark-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # bench_app's and bench_probe's ready() stamp the time around django_dataflow's ready().
    "bench_app",
    *(["django_dataflow"] if ENABLED else []),
    "bench_probe",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB_PATH", "/nonexistent-dataflow-bench/db.sqlite3"),
    }
}

if ENABLED:
    # Every feature on: a named application in the model registry, migrate's registry and policy
    # signal handlers connected (ALLOW_MIGRATIONS false), the drift checks registered.
    DATAFLOW = {"APPLICATION": "bench", "ALLOW_MIGRATIONS": False}
    if VIA_SETTINGS:
        # The same names as bench_app.models.model_name(); settings must not import models.
        DATAFLOW["MODELS"] = [f"bench_app.Bench{i:03d}" for i in range(COUNT)]
