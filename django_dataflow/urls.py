"""URLs of django-dataflow: include("django_dataflow.urls") under a prefix of your choice, e.g.
path("dataflow/", include("django_dataflow.urls")). No app_name: the API's own namespace
(django_dataflow_api) would otherwise be nested."""

from django.urls import include, path

from django_dataflow import views

urlpatterns = [
    path("metrics/", views.metrics, name="dataflow-metrics"),
    path("health/", views.health, name="dataflow-health"),
    path("", include("django_dataflow.api.urls")),
]
