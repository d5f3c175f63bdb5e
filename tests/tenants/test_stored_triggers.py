"""Stored model-change triggers on real schemas: the row lives in the public schema only, and its
run takes the tenant of the connection that changed the row, exactly like on_commit_of()."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django_tenants.utils import schema_context

from django_dataflow.models import ModelTriggerRule, WorkflowDefinition
from django_dataflow.triggers import stored
from shop.models import Customer
from tests.tenants.conftest import TENANTS, rows, schema_state, schema_tables

pytestmark = pytest.mark.postgres


@pytest.fixture
def welcome(settings: Any, tenants: Any) -> Iterator[ModelTriggerRule]:
    """A stored row: 'welcome' (marks the new customer) after every committed Customer creation."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True, "CELERY_RETRY_DELAY": 0.01}
    stored.reset()
    params = {"id": "{{pk}}", "fields": {"tier": "welcomed"}}
    mark = {"id": "mark", "type": "CustomerUpdateNode", "params": params}
    definition = WorkflowDefinition.objects.create(name="welcome", workflow={"nodes": [mark]})
    yield ModelTriggerRule.objects.create(
        model="shop.Customer", event="created", definition=definition, inputs={"source": "row"}
    )
    stored.reset()  # the next test's TRUNCATE sends no signals


def test_a_stored_row_fires_in_the_tenant_that_wrote(welcome: ModelTriggerRule) -> None:
    untouched = {schema: schema_state(schema) for schema in ("beta", "gamma", "public")}
    with schema_context("alpha"), transaction.atomic():
        customer = Customer.objects.create(name="A", email="a@example.com")
    assert rows("alpha", "shop_customer", "id, tier") == [(customer.pk, "welcomed")]
    [(run_tenant, status, inputs, trigger)] = rows(
        "alpha", "django_dataflow_workflowrun", "tenant, status, inputs, trigger"
    )
    assert (run_tenant, status) == ("alpha", "succeeded")
    assert json.loads(inputs) == {"model": "shop.Customer", "event": "created", "pk": customer.pk,
                                  "source": "row"}
    assert json.loads(trigger)["rule"] == welcome.pk
    assert {schema: schema_state(schema) for schema in ("beta", "gamma", "public")} == untouched


def test_a_row_saved_from_a_tenant_connection_is_read_from_public(welcome: ModelTriggerRule) -> None:
    with schema_context("beta"):
        assert stored.refresh() == 1  # public is on every tenant's search_path
        Customer.objects.create(name="B", email="b@example.com")
    assert rows("beta", "shop_customer", "tier") == [("welcomed",)]


def test_stored_triggers_live_in_the_public_schema_only(tenants: Any) -> None:
    assert "django_dataflow_modeltriggerrule" in schema_tables("public")
    for schema in TENANTS:
        assert "django_dataflow_modeltriggerrule" not in schema_tables(schema)


def test_on_a_tenant_host_the_rows_are_shown_read_only(welcome: ModelTriggerRule) -> None:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import override_settings
    from django.urls import reverse

    from tests.tenants.test_admin_scope import admin_on

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    change = reverse("admin:django_dataflow_modeltriggerrule_change", args=[welcome.pk])
    definition = reverse("admin:django_dataflow_workflowdefinition_change", args=[welcome.definition_id])
    before = {schema: schema_state(schema) for schema in ("public", *TENANTS)}
    with override_settings(SHOW_PUBLIC_IF_NO_TENANT_FOUND=True, DATAFLOW=settings.DATAFLOW):
        alpha = admin_on("alpha.test", root)
        listing = alpha.get(reverse("admin:django_dataflow_modeltriggerrule_changelist"))
        assert listing.status_code == 200 and "shop.Customer" in listing.content.decode()
        assert 'name="form-0-enabled"' not in listing.content.decode()  # no toggle there
        assert alpha.get(reverse("admin:django_dataflow_modeltriggerrule_add")).status_code == 403
        forged = {"model": "shop.Customer", "event": "deleted", "definition": str(welcome.definition_id),
                  "inputs": "{}"}
        assert alpha.post(change, forged).status_code == 403
        page = alpha.get(definition).content.decode()
        assert "model_triggers-TOTAL_FORMS" not in page  # the inline is the public host's
        public = admin_on("www.test", root)
        assert public.get(reverse("admin:django_dataflow_modeltriggerrule_add")).status_code == 200
        assert "model_triggers-TOTAL_FORMS" in public.get(definition).content.decode()
    assert ModelTriggerRule.objects.get().event == "created"
    assert {schema: schema_state(schema) for schema in ("public", *TENANTS)} == before
