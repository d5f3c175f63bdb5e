"""The HTTP API: plain Django views over the node catalog, workflow definitions and runs.

Include it with ``path("dataflow/", include("django_dataflow.urls"))``; docs/api.md describes it.
"""
