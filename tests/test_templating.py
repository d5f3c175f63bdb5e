"""'{{name}}' placeholders in params, replaced from the run's inputs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from django_dataflow import LocalRuntime, WorkflowValidationError
from django_dataflow.workflow.templating import names_in, render
from shop.models import Customer, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db


def test_placeholder_replaced_from_inputs() -> None:
    results = run(
        [("ProductCreateNode", "p", {"name": "{{name}}", "price": "{{price}}", "sku": "{{sku}}"})],
        inputs={"name": "Lamp", "price": "19.99", "sku": "L-1"},
    )
    product = Product.objects.get()
    assert (product.name, product.price, product.sku) == ("Lamp", Decimal("19.99"), "L-1")
    assert results["p"]["name"] == "Lamp"


def test_whitespace_inside_braces_is_allowed() -> None:
    run([("CustomerCreateNode", "c", {"name": "{{ who }}", "email": "a@x.io"})], inputs={"who": "Ada"})
    assert Customer.objects.get().name == "Ada"


@pytest.mark.parametrize(
    "value",
    [7, 0, 2.5, True, "7", [1, "two", {"three": 3}], {"tier": "gold", "tags": ["a", "b"]}],
    ids=["int", "zero", "float", "bool", "str", "list", "dict"],
)
def test_whole_placeholder_keeps_input_type(value: Any) -> None:
    run(
        [("CustomerCreateNode", "c", {"name": "Ada", "email": "a@x.io", "metadata": "{{meta}}"})],
        inputs={"meta": value},
    )
    stored = Customer.objects.get().metadata
    assert stored == value
    assert type(stored) is type(value)


def test_whole_placeholder_list_in_filter() -> None:
    for sku in ("A", "B", "C"):
        Product.objects.create(name=sku, sku=sku, price="1.00")
    results = run(
        [("ProductListNode", "l", {"filter": {"sku": {"$in": "{{skus}}"}}, "order_by": ["sku"]})],
        inputs={"skus": ["A", "C"]},
    )
    assert [r["sku"] for r in results["l"]["records"]] == ["A", "C"]


def test_whole_placeholder_int_reaches_the_node_as_int() -> None:
    for sku in ("A", "B", "C"):
        Product.objects.create(name=sku, sku=sku, price="1.00")
    results = run([("ProductListNode", "l", {"limit": "{{n}}"})], inputs={"n": 2})
    assert results["l"]["count"] == 2
    assert render({"limit": "{{n}}"}, {"n": 2}) == {"limit": 2}


def test_embedded_placeholders_become_text() -> None:
    results = run(
        [
            (
                "CustomerCreateNode",
                "c",
                {"name": "{{first}} {{last}} #{{n}}", "email": "{{user}}@example.com",
                 "metadata": {"note": "tags={{tags}} meta={{meta}}"}},
            )
        ],
        inputs={"first": "Ada", "last": "Lovelace", "n": 3, "user": "ada", "tags": ["x", 1],
                "meta": {"k": "v"}},
    )
    customer = Customer.objects.get()
    assert customer.name == "Ada Lovelace #3"
    assert customer.email == "ada@example.com"
    assert customer.metadata == {"note": 'tags=["x", 1] meta={"k": "v"}'}
    assert results["c"]["name"] == "Ada Lovelace #3"


def test_missing_input_fails_before_anything_runs(unchanged_db: Any) -> None:
    workflow = build(
        [
            ("ProductCreateNode", "first", {"name": "Lamp", "price": "1", "sku": "L-1"}),
            ("ProductCreateNode", "second", {"name": "{{name}}", "price": "{{price}}", "sku": "L-2"}),
        ]
    )
    with pytest.raises(WorkflowValidationError) as info:
        LocalRuntime().execute(workflow, inputs={"price": "2"})
    message = str(info.value)
    assert "missing input(s) name" in message
    assert "the workflow uses: name, price" in message
    assert not Product.objects.exists()


def test_missing_input_with_no_inputs_given(unchanged_db: Any) -> None:
    workflow = build([("ProductCountNode", "c", {"filter": {"sku": "{{sku}}"}})])
    with pytest.raises(WorkflowValidationError, match="missing input\\(s\\) sku"):
        LocalRuntime().execute(workflow)


def test_inputs_must_be_a_mapping(unchanged_db: Any) -> None:
    workflow = build([("ProductCountNode", "c", {})])
    with pytest.raises(WorkflowValidationError, match="inputs must be a dict, not list"):
        LocalRuntime().execute(workflow, inputs=["x"])  # type: ignore[arg-type]


def test_input_values_are_not_expanded_again() -> None:
    results = run(
        [
            ("CustomerCreateNode", "c", {"name": "{{a}}", "email": "a@x.io",
                                          "metadata": {"text": "pre {{a}} post", "b": "{{b}}"}}),
        ],
        inputs={"a": "{{b}}", "b": "SECRET"},
    )
    customer = Customer.objects.get()
    assert customer.name == "{{b}}"
    assert customer.metadata == {"text": "pre {{b}} post", "b": "SECRET"}
    assert results["c"]["name"] == "{{b}}"


def test_placeholders_inside_filters_conditions_and_nested_dicts() -> None:
    cheap = Product.objects.create(name="Cheap", sku="C", price="5.00")
    Product.objects.create(name="Dear", sku="D", price="500.00")
    results = run(
        [
            ("ProductListNode", "list", {"filter": {"$and": [{"price": {"$lt": "{{max}}"}},
                                                              {"name": {"$in": ["{{prefix}}", "x"]}}]}}),
            ("ProductCountNode", "count", {"filter": {"price": {"$gte": "{{max}}"}}}),
            ("ProductUpdateNode", "upd", {"conditions": {"sku": "{{sku}}"},
                                          "fields": {"name": "{{prefix}}-renamed", "stock": "{{stock}}"}}),
        ],
        inputs={"max": "100", "prefix": "Cheap", "sku": "C", "stock": 42},
    )
    assert [r["sku"] for r in results["list"]["records"]] == ["C"]
    assert results["count"] == {"count": 1}
    cheap.refresh_from_db()
    assert (cheap.name, cheap.stock) == ("Cheap-renamed", 42)


def test_input_names_collects_every_placeholder() -> None:
    workflow = build(
        [
            ("ProductCreateNode", "p", {"name": "{{name}} {{ suffix }}", "price": "{{price}}", "sku": "x"}),
            ("ProductListNode", "l", {"filter": {"$or": [{"sku": "{{a}}"}, {"sku": {"$in": ["{{b}}"]}}]}}),
            ("ProductCountNode", "c", {"filter": {"name": "{{not a name}}"}}),
        ]
    )
    assert workflow.input_names == frozenset({"name", "suffix", "price", "a", "b"})
    assert workflow.templated == frozenset({"p", "l"})


def test_workflow_without_placeholders_has_no_input_names() -> None:
    workflow = build([("ProductCountNode", "c", {"filter": {"name": "{ {x} }"}})])
    assert workflow.input_names == frozenset()
    assert LocalRuntime().execute(workflow, inputs={"unused": 1})[0] == {"c": {"count": 0}}


def test_templated_params_do_not_change_the_workflow() -> None:
    workflow = build([("CustomerCreateNode", "c", {"name": "{{n}}", "email": "{{n}}@x.io",
                                                    "metadata": {"who": "{{n}}"}})])
    LocalRuntime().execute(workflow, inputs={"n": "ada"})
    LocalRuntime().execute(workflow, inputs={"n": "bob"})
    assert workflow.node("c").params == {"name": "{{n}}", "email": "{{n}}@x.io", "metadata": {"who": "{{n}}"}}
    assert sorted(Customer.objects.values_list("name", "metadata")) == [
        ("ada", {"who": "ada"}), ("bob", {"who": "bob"})
    ]


def test_bad_templated_value_is_a_run_time_error_naming_the_field(unchanged_db: Any) -> None:
    from django_dataflow import NodeExecutionError

    workflow = build(
        [
            ("ProductCreateNode", "ok", {"name": "A", "price": "1", "sku": "A"}),
            ("ProductCreateNode", "bad", {"name": "B", "price": "{{price}}", "sku": "B"}),
        ]
    )
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(workflow, inputs={"price": "cheap"})
    assert info.value.node_id == "bad"
    assert "price" in str(info.value)
    assert not Product.objects.exists()


def test_names_in_and_render_helpers() -> None:
    params = {"a": ["{{x}}", {"b": "{{y}}-{{x}}"}], "c": 5, "d": ("{{z}}",)}
    assert names_in(params) == {"x", "y", "z"}
    assert render(params, {"x": 1, "y": None, "z": [2]}) == {
        "a": [1, {"b": "None-1"}], "c": 5, "d": [[2]]
    }
