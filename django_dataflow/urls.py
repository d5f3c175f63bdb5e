"""URLs of django_dataflow: include with path("dataflow/", include("django_dataflow.urls"))."""

from django.urls import include, path

urlpatterns = [path("", include("django_dataflow.api.urls"))]
