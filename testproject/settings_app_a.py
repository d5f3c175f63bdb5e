"""Application A of the two-application tests: the test project plus 'catalog', which A owns.

A registers its models, migrates them, and records them in the model registry table. 'catalog' is
written by the test into a temporary directory on A's PYTHONPATH, because its code changes during
the test (a field changes, makemigrations runs, A migrates again). Both applications use the base
settings' database (DATABASE_URL, or DATAFLOW_SQLITE_PATH), so they share it.

DATAFLOW_APPLICATION and DATAFLOW_ALLOW_MIGRATIONS=0 turn a process of A's code into a replica that
must not migrate (the ALLOW_MIGRATIONS test).
"""

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import DATAFLOW, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "catalog"]

DATAFLOW = {
    **DATAFLOW,
    "APPLICATION": os.environ.get("DATAFLOW_APPLICATION", "app-a"),
    "ALLOW_MIGRATIONS": os.environ.get("DATAFLOW_ALLOW_MIGRATIONS", "1") == "1",
}
