"""Management commands: dataflow_nodes (the node catalog) and the shop_demo example."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_dataflow.registry import registry
from shop.models import Customer, Order, Product

OPS = [
    "Create", "Read", "Update", "Delete", "List", "Count", "Aggregate",
    "BulkCreate", "BulkUpdate", "BulkDelete", "BulkUpsert",
]


def nodes_output(*args: str) -> str:
    out = StringIO()
    call_command("dataflow_nodes", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_text_lists_every_model_node_type_and_param() -> None:
    text = nodes_output()
    for entry in registry().entries():
        assert f"{entry.label} (name: {entry.name})" in text
        for cls in entry.nodes.values():
            assert f"  {cls.type_name}\n" in text
    labels = ("shop.Customer", "shop.Product", "shop.Order", "shop.StockLevel (name: Stock)", "auth.User")
    for label in labels:
        assert label in text
    product_create = text.split("  ProductCreateNode\n", 1)[1].split("\n  Product", 1)[0]
    for param in ("name", "sku", "price", "stock", "validate"):
        assert f"      {param} " in product_create
    assert "required" in product_create.split("      sku ", 1)[1].split("\n", 1)[0]
    list_section = text.split("  ProductListNode\n", 1)[1].split("\n  Product", 1)[0]
    for param in ("filter", "order_by", "limit", "offset", "fields", "with_total"):
        assert f"      {param} " in list_section


def test_text_never_shows_an_excluded_field() -> None:
    user_section = nodes_output("--model", "auth.User")
    assert "UserCreateNode" in user_section
    assert "username" in user_section
    assert "password" not in user_section


def test_json_output() -> None:
    catalog = json.loads(nodes_output("--json"))
    by_label = {model["model"]: model for model in catalog}
    assert {"shop.Customer", "shop.Product", "shop.Order", "shop.StockLevel", "auth.User"} <= set(by_label)
    assert by_label["shop.StockLevel"]["name"] == "Stock"
    product = by_label["shop.Product"]
    types = [node["type"] for node in product["nodes"]]
    assert set(types) >= {f"Product{op}Node" for op in OPS}
    create = next(node for node in product["nodes"] if node["type"] == "ProductCreateNode")
    assert create["operation"] == "Create"
    assert {"name", "sku", "price"} <= set(create["params"])
    assert "required" in create["params"]["sku"]
    assert "required" not in create["params"]["description"]
    order_create = next(n for n in by_label["shop.Order"]["nodes"] if n["type"] == "OrderCreateNode")
    assert "shop.Product" in order_create["params"]["product_id"]
    assert "password" not in json.dumps(by_label["auth.User"])


@pytest.mark.parametrize("wanted", ["shop.Product", "shop.product", "Product"])
def test_model_filter(wanted: str) -> None:
    catalog = json.loads(nodes_output("--model", wanted, "--json"))
    assert [model["model"] for model in catalog] == ["shop.Product"]
    text = nodes_output("--model", wanted)
    assert "ProductCreateNode" in text
    assert "OrderCreateNode" not in text
    assert "CustomerReadNode" not in text


def test_model_filter_by_renamed_node_name() -> None:
    catalog = json.loads(nodes_output("--model", "Stock", "--json"))
    assert [model["model"] for model in catalog] == ["shop.StockLevel"]
    assert catalog[0]["nodes"][0]["type"] == "StockCreateNode"


@pytest.mark.parametrize("wanted", ["shop.Nope", "Widget", "StockLevel"])
def test_unknown_model_is_a_command_error(wanted: str) -> None:
    with pytest.raises(CommandError) as info:
        nodes_output("--model", wanted)
    assert f"No registered model {wanted!r}" in str(info.value)


@pytest.mark.django_db
def test_shop_demo_runs_and_rolls_back_its_failing_part(unchanged_db: Any) -> None:
    out = StringIO()
    call_command("shop_demo", stdout=out)
    text = out.getvalue()
    assert "succeeded" in text
    results = json.loads(text.split("succeeded:\n", 1)[1].split("\n\nA failing workflow", 1)[0])
    assert results["order"]["quantity"] == 2
    assert results["orders"] == {"count": 1}
    assert "node 'bad' (ProductCreateNode) failed" in text
    assert "price" in text
    assert Customer.objects.count() == 1
    assert Order.objects.count() == 1
    assert Product.objects.count() == 1  # 'ok' of the failing workflow was rolled back
    # The demo's own rows are removed here so that unchanged_db checks nothing else was written.
    Order.objects.all().delete()
    Product.objects.all().delete()
    Customer.objects.all().delete()
