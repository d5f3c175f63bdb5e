"""WorkflowDefinition rows and django_dataflow.run("name", ...)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

import django_dataflow
from django_dataflow import WorkflowBuilder, WorkflowValidationError
from django_dataflow.models import WorkflowDefinition, WorkflowRun
from shop.models import Product

pytestmark = pytest.mark.django_db


def product_builder(name: str = "Lamp") -> WorkflowBuilder:
    """A one-node workflow creating a product whose sku comes from inputs."""
    builder = WorkflowBuilder()
    builder.add_node("ProductCreateNode", "p", {"name": name, "sku": "{{sku}}", "price": "1"})
    return builder


@pytest.fixture
def nightly() -> WorkflowDefinition:
    """A saved definition."""
    return WorkflowDefinition.objects.create(
        name="nightly_import", description="Loads products", workflow=product_builder().build().to_dict()
    )


def test_definition_stores_the_canonical_dict(nightly: WorkflowDefinition) -> None:
    nightly.refresh_from_db()
    assert nightly.workflow == product_builder().build().to_dict()
    assert nightly.version == 1
    assert nightly.build().node("p").type == "ProductCreateNode"
    assert str(nightly) == "nightly_import (v1)"


def test_a_builder_or_workflow_can_be_assigned() -> None:
    from_builder = WorkflowDefinition.objects.create(name="a", workflow=product_builder())
    from_workflow = WorkflowDefinition.objects.create(name="b", workflow=product_builder().build())
    assert isinstance(from_builder.workflow, dict)
    assert from_builder.workflow == from_workflow.workflow


def test_invalid_workflow_is_refused_on_save() -> None:
    bad = {"nodes": [{"id": "p", "type": "NopeNode", "params": {}}]}
    with pytest.raises(WorkflowValidationError, match="NopeNode"):
        WorkflowDefinition.objects.create(name="bad", workflow=bad)
    assert not WorkflowDefinition.objects.exists()


def test_clean_reports_every_problem_on_the_workflow_field() -> None:
    definition = WorkflowDefinition(
        name="bad",
        workflow={"nodes": [{"id": "p", "type": "NopeNode"}, {"id": "p", "type": "ProductCreateNode"}]},
    )
    with pytest.raises(ValidationError) as caught:
        definition.full_clean()
    messages = caught.value.message_dict["workflow"]
    assert len(messages) >= 2 and any("NopeNode" in m for m in messages)


def test_version_goes_up_only_when_the_workflow_changes(nightly: WorkflowDefinition) -> None:
    nightly.description = "same workflow"
    nightly.save()
    assert nightly.version == 1
    nightly.workflow = product_builder("Desk").build().to_dict()
    nightly.save()
    nightly.refresh_from_db()
    assert nightly.version == 2
    nightly.save(update_fields=["description"])
    assert WorkflowDefinition.objects.get().version == 2
    nightly.workflow = product_builder("Chair")
    nightly.save(update_fields=["workflow"])
    assert WorkflowDefinition.objects.get().version == 3


def test_run_by_name_in_process(nightly: WorkflowDefinition) -> None:
    results, run_id = django_dataflow.run("nightly_import", inputs={"sku": "N-1"})
    assert results["p"]["sku"] == "N-1"
    assert Product.objects.get().sku == "N-1"
    assert isinstance(run_id, str)


def test_unknown_name_lists_the_defined_ones(nightly: WorkflowDefinition) -> None:
    message = "no workflow definition named 'nope'; defined: nightly_import"
    with pytest.raises(WorkflowValidationError, match=message):
        django_dataflow.run("nope")


def test_queue_only_applies_to_async_runs(nightly: WorkflowDefinition) -> None:
    with pytest.raises(WorkflowValidationError, match="queue="):
        django_dataflow.run("nightly_import", inputs={"sku": "x"}, queue="etl")


def test_run_by_name_async_records_the_definition(
    nightly: WorkflowDefinition, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    with django_capture_on_commit_callbacks(execute=True):
        handle = django_dataflow.run("nightly_import", inputs={"sku": "N-2"}, async_=True)
    assert handle.wait(timeout=5)["p"]["sku"] == "N-2"
    run = WorkflowRun.objects.get(pk=handle.run_id)
    assert (run.definition, run.definition_version) == ("nightly_import", 1)
