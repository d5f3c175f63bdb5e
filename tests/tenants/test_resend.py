"""dataflow_resend finds lost runs in every tenant's schema and sends them with their schema."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from django_dataflow import CeleryRuntime, WorkflowBuilder
from tests.tenants.conftest import rows
from tests.test_resend import STUB_APP, TASK

pytestmark = pytest.mark.postgres


def lost_run(tenant: str | None, sku: str) -> str:
    """A Celery run of the tenant, submitted an hour ago, whose message the broker lost."""
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "p", {"name": "Lamp", "sku": sku, "price": "1"})
    handle = CeleryRuntime().submit(builder.build(), tenant=tenant)
    schema = tenant or "public"
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{schema}"."django_dataflow_workflowrun" SET created_at = %s WHERE run_id = %s',
            [timezone.now() - timedelta(hours=1), handle.run_id],
        )
    return handle.run_id


@pytest.fixture
def stub(tenants: Any, settings: Any) -> Any:
    """CeleryRuntime sends to a stub that records the messages (the first ones are 'lost')."""
    dataflow = {**settings.DATAFLOW, "CELERY_EAGER": False, "CELERY_APP": "tests.test_resend.STUB_APP"}
    with override_settings(DATAFLOW=dataflow):
        TASK.error = None
        TASK.sent.clear()
        yield STUB_APP
        TASK.sent.clear()


def test_every_schema_is_scanned_and_each_run_keeps_its_schema(stub: Any) -> None:
    alpha, beta = lost_run("alpha", "A-1"), lost_run("beta", "B-1")
    TASK.sent.clear()
    out = StringIO()
    call_command("dataflow_resend", stdout=out)
    sent = {m["kwargs"]["run_id"]: m for m in TASK.sent}
    assert set(sent) == {alpha, beta}
    assert sent[alpha]["kwargs"]["schema"] == "alpha" and sent[alpha]["headers"] == {"_schema_name": "alpha"}
    assert sent[beta]["kwargs"]["schema"] == "beta"
    assert "tenant alpha" in out.getvalue() and "2 run(s) sent" in out.getvalue()
    assert rows("alpha", "shop_product") == []  # sending runs nothing by itself


def test_tenant_option_limits_the_scan(stub: Any) -> None:
    lost_run("alpha", "A-1")
    beta = lost_run("beta", "B-1")
    TASK.sent.clear()
    call_command("dataflow_resend", "--tenant", "beta", stdout=StringIO())
    assert [m["kwargs"]["run_id"] for m in TASK.sent] == [beta]
