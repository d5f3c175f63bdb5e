"""Application B of the two-application tests: shares A's database but none of A's model code.

B has no 'shop' and no 'catalog' app: it finds A's models in the registry table
(manage.py dataflow_discover) and runs their nodes through django_dataflow.registry.load_from_database().
B never migrates registered models (ALLOW_MIGRATIONS false): A owns the schema.
"""

from testproject.settings import *  # noqa: F403
from testproject.settings import DATAFLOW, INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "shop"]

DATAFLOW = {**DATAFLOW, "APPLICATION": "app-b", "ALLOW_MIGRATIONS": False}
