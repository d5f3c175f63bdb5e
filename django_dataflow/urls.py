"""URLs of django-dataflow: include("django_dataflow.urls") under a prefix of your choice."""

from django.urls import path

from django_dataflow import views

app_name = "django_dataflow"

urlpatterns = [
    path("metrics/", views.metrics, name="metrics"),
    path("health/", views.health, name="health"),
]
