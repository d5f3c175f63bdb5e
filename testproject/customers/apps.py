from django.apps import AppConfig


class CustomersConfig(AppConfig):
    """The tenants of testproject.settings_tenants (django-tenants' tenant and domain models)."""

    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"
