"""The test project's Celery app: `celery -A testproject worker -Q dataflow,celery`.

Named celery_app.py rather than Celery's usual celery.py: this directory is also on sys.path (for
the `shop` app), where a celery.py would shadow the celery package itself.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

app = Celery("testproject")
# Every CELERY_* Django setting configures the app (CELERY_BROKER_URL -> broker_url, ...).
app.config_from_object("django.conf:settings", namespace="CELERY")
# Imports django_dataflow.tasks (the CeleryRuntime task) and shop.tasks in the worker.
app.autodiscover_tasks()
