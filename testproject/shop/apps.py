"""The sample shop app."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """Customers, products and orders registered as workflow nodes."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"
