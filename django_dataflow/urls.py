"""URLs of django-dataflow: include("django_dataflow.urls") under a prefix of your choice."""

from django.urls import path

from django_dataflow import views

urlpatterns = [
    path("metrics/", views.metrics, name="dataflow-metrics"),
    path("health/", views.health, name="dataflow-health"),
]
