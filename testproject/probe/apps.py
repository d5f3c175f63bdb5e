from django.apps import AppConfig


class ProbeConfig(AppConfig):
    """A shared-and-tenant app whose rows record the schema the database wrote them in."""

    name = "probe"
    default_auto_field = "django.db.models.BigAutoField"
