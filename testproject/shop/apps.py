"""The sample shop app."""

import os

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """Customers, products and orders registered as workflow nodes."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the example triggers in the trigger tests' worker processes only."""
        if os.environ.get("SHOP_TRIGGERS") == "1":
            from shop import triggers

            triggers.register()
