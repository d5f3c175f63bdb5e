"""A stored model-change trigger added in a real browser: the form refuses a reserved input key
naming the field, the saved row fires for the next committed change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_dataflow.models import ModelTriggerRule, WorkflowDefinition, WorkflowRun
from django_dataflow.triggers import stored
from shop.models import Customer
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_admin_browser import visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def forget_loaded_rows() -> Iterator[None]:
    """The flush after the test sends no signals: forget the rows loaded in this process."""
    stored.reset()
    yield
    stored.reset()


def test_add_a_trigger_row_and_see_it_fire(admin_page: Any, live_server: Any) -> None:
    count = {"id": "count", "type": "ProductCountNode", "params": {}}
    definition = WorkflowDefinition.objects.create(name="audit", workflow={"nodes": [count]})
    visit(admin_page, live_server.url, "/admin/django_dataflow/modeltriggerrule/add/")
    admin_page.select_option("#id_model", "shop.Customer")
    admin_page.select_option("#id_event", "created")
    admin_page.select_option("#id_definition", str(definition.pk))
    admin_page.fill("#id_inputs", '{"pk": 1}')
    admin_page.click("input[name=_save]")
    error = admin_page.locator(".field-inputs .errorlist").inner_text()
    assert "inputs may not set 'pk'" in error
    assert not ModelTriggerRule.objects.exists()

    admin_page.fill("#id_inputs", '{"source": "browser"}')
    admin_page.click("input[name=_save]")
    assert "was added successfully" in admin_page.locator(".messagelist").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin_page.screenshot(path=str(ARTIFACTS / "admin-model-triggers.png"))
    row = ModelTriggerRule.objects.get()
    assert (row.model, row.event, row.inputs) == ("shop.Customer", "created", {"source": "browser"})
    assert admin_page.console_log.errors == []

    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    [run] = WorkflowRun.objects.filter(definition="audit")
    assert run.inputs == {
        "model": "shop.Customer", "event": "created", "pk": customer.pk, "source": "browser",
    }
