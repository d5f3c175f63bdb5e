"""Sample models covering the field types nodes must handle: FK, JSON, Decimal, DateTime."""

import uuid

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


@django_dataflow.register
class Shipment(models.Model):
    """A parcel: one field of every type the bulk nodes must store exactly as bulk_create does."""

    class Carrier(models.IntegerChoices):
        POST = 1
        COURIER = 2
        FREIGHT = 3

    class Priority(models.TextChoices):
        LOW = "low"
        HIGH = "high"

    tracking = models.UUIDField(default=uuid.uuid4, unique=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL)
    carrier = models.PositiveSmallIntegerField(choices=Carrier.choices, default=Carrier.POST)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.LOW)
    weight_grams = models.BigIntegerField(default=0)
    parcels = models.SmallIntegerField(default=1)
    volume = models.FloatField(null=True, blank=True)
    insured_value = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    fragile = models.BooleanField(null=True, blank=True)
    ship_date = models.DateField(null=True, blank=True)
    pickup_time = models.TimeField(null=True, blank=True)
    transit = models.DurationField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    label = models.SlugField(max_length=50, blank=True, default="")
    tracking_url = models.URLField(blank=True, default="")
    contact = models.EmailField(blank=True, default="")
    origin_ip = models.GenericIPAddressField(null=True, blank=True)
    manifest = models.JSONField(default=list, blank=True)
    customs = models.JSONField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True, editable=True)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_on = models.DateField(auto_now=True)

    def __str__(self) -> str:
        return str(self.tracking)
