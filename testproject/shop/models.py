"""Sample models covering the field types nodes must handle: FK, JSON, Decimal, DateTime."""

from django.db import models
from django.utils import timezone

import django_dataflow


@django_dataflow.register
class Customer(models.Model):
    """A buyer; email is unique, metadata is free-form JSON."""

    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    tier = models.CharField(max_length=20, default="standard")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


@django_dataflow.register
class Product(models.Model):
    """Something for sale; sku is unique."""

    name = models.CharField(max_length=200)
    sku = models.CharField(max_length=64, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.IntegerField(default=0)
    active = models.BooleanField(default=True)
    # Nullable on purpose: the tests need a text column holding NULL.
    description = models.TextField(blank=True, null=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


@django_dataflow.register
class Order(models.Model):
    """An order of one product, optionally by a known customer."""

    class Status(models.TextChoices):
        NEW = "new"
        PAID = "paid"
        SHIPPED = "shipped"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    reference = models.CharField(max_length=40, unique=True, null=True, blank=True)
    placed_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Order {self.pk}"


@django_dataflow.register(name="Stock")
class StockLevel(models.Model):
    """Units of a product per warehouse; (product, warehouse) is unique, for upserts."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    warehouse = models.CharField(max_length=20)
    quantity = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_product_warehouse")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse}"
