"""Conventions decided in docs/decisions.md: boolean words, NULL ordering, lossy run records."""

import pytest

from django_dataflow import LocalRuntime, NodeExecutionError
from django_dataflow.models import WorkflowRun
from shop.models import Customer, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("word", "expected"), [("true", True), ("FALSE", False), ("no", False), ("1", True)])
def test_boolean_words_convert_like_a_form(word: str, expected: bool) -> None:
    result = run([("ProductCreateNode", "p", {"name": "A", "sku": "A", "price": 1, "active": word})])
    assert result["p"]["active"] is expected
    assert Product.objects.get().active is expected


def test_boolean_nonsense_is_refused_naming_the_field(unchanged_db: object) -> None:
    with pytest.raises(NodeExecutionError, match="field 'active'"):
        run([("ProductCreateNode", "p", {"name": "A", "sku": "A", "price": 1, "active": "maybe"})])


@pytest.mark.parametrize(("order", "expected"), [
    (["description"], ["a", "b", None]),
    (["-description"], [None, "b", "a"]),
    ({"description": 1}, ["a", "b", None]),
])
def test_null_sorts_largest_on_every_backend(order: object, expected: list) -> None:
    for sku, description in [("1", "b"), ("2", None), ("3", "a")]:
        Product.objects.create(name=sku, sku=sku, price=1, description=description)
    result = run([("ProductListNode", "l", {"order_by": order, "fields": ["description"]})])
    assert [r["description"] for r in result["l"]["records"]] == expected


def test_recorded_run_with_generator_data_keeps_a_placeholder() -> None:
    rows = ({"name": f"c{i}", "email": f"c{i}@example.com"} for i in range(3))
    workflow = build([("CustomerBulkCreateNode", "load", {"data": rows})])
    results, run_id = LocalRuntime(record=True).execute(workflow)
    assert results["load"] == {"created": 3}
    assert Customer.objects.count() == 3
    recorded = WorkflowRun.objects.get(pk=run_id)
    assert recorded.status == "succeeded"
    assert recorded.workflow["nodes"][0]["params"]["data"] == "<generator>"


def test_failed_read_inside_a_callers_transaction_leaves_it_usable() -> None:
    from django.db import transaction

    Product.objects.create(name="A", sku="A", price=1)
    with transaction.atomic():
        with pytest.raises(NodeExecutionError):
            # A database error (bad regex on PostgreSQL would be refused earlier; a missing
            # record is enough to prove the savepoint path on every backend).
            run([("ProductReadNode", "r", {"id": 999})])
        assert Product.objects.count() == 1  # the transaction still works


def test_cursor_of_one_model_is_refused_by_another() -> None:
    from django_dataflow import WorkflowValidationError

    for i in range(3):
        Customer.objects.create(name=f"c{i}", email=f"c{i}@example.com")
        Product.objects.create(name=f"p{i}", sku=f"p{i}", price=1)
    page = run([("CustomerListNode", "l", {"limit": 1})])["l"]
    with pytest.raises(NodeExecutionError) as caught:
        run([("ProductListNode", "l", {"limit": 1, "after": "{{c}}"})], inputs={"c": page["next_cursor"]})
    assert isinstance(caught.value.__cause__, WorkflowValidationError)
    assert "shop.Product" in str(caught.value)
