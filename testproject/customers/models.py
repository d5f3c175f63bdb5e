"""django-tenants' tenant (one PostgreSQL schema each) and domain models."""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """A tenant; creating one creates and migrates its schema."""

    name = models.CharField(max_length=100)
    auto_create_schema = True
    auto_drop_schema = True

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    """A host name routed to a tenant by django-tenants' middleware."""
