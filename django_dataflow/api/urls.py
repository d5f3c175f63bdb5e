"""URLs of the HTTP API (namespace django_dataflow_api); mounted by django_dataflow/urls.py.

The named paths are the documented ones; each also answers with the other trailing-slash form,
so that a POST never meets APPEND_SLASH's redirect (which cannot keep a POST body).
"""

from django.urls import path, re_path

from django_dataflow.api import views

app_name = "django_dataflow_api"

urlpatterns = [
    path("nodes/", views.nodes, name="nodes"),
    path("workflows/<str:name>/runs", views.definition_runs, name="definition-runs"),
    path("runs/", views.runs, name="runs"),
    path("runs/<str:run_id>", views.run_detail, name="run"),
    path("runs/<str:run_id>/events", views.run_events, name="run-events"),
    path("runs/<str:run_id>/cancel", views.run_cancel, name="run-cancel"),
    path("schema/", views.schema, name="schema"),
    # The other trailing-slash forms.
    re_path(r"^nodes$", views.nodes),
    re_path(r"^workflows/(?P<name>[^/]+)/runs/$", views.definition_runs),
    re_path(r"^runs$", views.runs),
    re_path(r"^runs/(?P<run_id>[^/]+)/$", views.run_detail),
    re_path(r"^runs/(?P<run_id>[^/]+)/events/$", views.run_events),
    re_path(r"^runs/(?P<run_id>[^/]+)/cancel/$", views.run_cancel),
    re_path(r"^schema$", views.schema),
    # Anything else under the API's own prefixes answers with a JSON 404.
    re_path(r"^(?P<path>(?:nodes|workflows|runs|schema)/.*)$", views.unknown),
]
