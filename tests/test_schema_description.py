"""Model descriptions, schema hashes and readable diffs; rebuilding models and code from them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.test.utils import isolate_apps

import django_dataflow
from django_dataflow.registry import get_entry
from django_dataflow.schema_registry.description import (
    ModelDescription,
    describe_entry,
    describe_model,
    schema_hash,
)
from django_dataflow.schema_registry.diff import diff_fields, render_diff
from django_dataflow.schema_registry.dynamic import build_models
from django_dataflow.schema_registry.model_code import model_source
from shop.models import Customer, Order, Product, StockLevel

SHOP = [Customer, Product, Order, StockLevel]


def described(model: type[models.Model]) -> ModelDescription:
    return describe_entry(get_entry(model))


def test_description_of_a_model_with_relations_and_defaults() -> None:
    order = described(Order)
    assert (order.label, order.table, order.node_name) == ("shop.Order", "shop_order", "Order")
    assert order.managed is True
    assert [f["name"] for f in order.fields] == [
        "id", "customer", "product", "quantity", "status", "reference", "placed_at", "notes",
    ]
    customer = order.field_named("customer")
    assert customer["column"] == "customer_id"
    assert customer["type"] == "ForeignKey" and customer["null"] is True
    assert customer["relation"] == {
        "model": "shop.Customer", "table": "shop_customer", "column": "id", "to_field": "id",
        "on_delete": "SET_NULL", "related_name": "orders", "column_type": "BigIntegerField",
    }
    assert order.field_named("product")["relation"]["on_delete"] == "PROTECT"
    assert order.field_named("status")["default"] == {"value": "new"}  # a TextChoices member, as its value
    assert order.field_named("placed_at")["default"] == {"callable": "django.utils.timezone.now"}
    assert order.field_named("reference")["unique"] is True
    assert order.field_named("id")["primary_key"] is True


def test_description_of_settings_registered_user_keeps_hidden_fields_apart() -> None:
    user = described(User)
    assert user.hidden_fields == ["password"]
    assert user.field_named("password") is not None  # the table has it; nodes hide it
    assert user.node_name == "User"


def test_renamed_node_name_is_recorded() -> None:
    assert described(StockLevel).node_name == "Stock"


def test_hash_ignores_field_order_and_unhashed_attributes() -> None:
    product = described(Product)
    shuffled = list(reversed(copy.deepcopy(product.fields)))
    for item in shuffled:
        item["blank"] = not item.get("blank")
        item["db_index"] = True
        item["class"] = "somewhere.else.Field"
    assert schema_hash(product.table, shuffled) == product.schema_hash
    assert len(product.schema_hash) == 64


@pytest.mark.parametrize(
    ("field", "key", "value"),
    [("price", "max_digits", 12), ("name", "null", True), ("sku", "unique", False),
     ("stock", "default", {"value": 1}), ("name", "type", "TextField"), ("name", "column", "title")],
)
def test_hash_changes_with_each_schema_attribute(field: str, key: str, value: Any) -> None:
    product = described(Product)
    changed = copy.deepcopy(product.fields)
    next(f for f in changed if f["name"] == field)[key] = value
    assert schema_hash(product.table, changed) != product.schema_hash


def test_hash_of_a_relation_covers_its_table_not_the_model_label() -> None:
    order = described(Order)
    relabelled = copy.deepcopy(order.fields)
    relation = next(f for f in relabelled if f["name"] == "product")["relation"]
    relation["model"] = "reporting.Product"  # another application's copy of the same table
    assert schema_hash(order.table, relabelled) == order.schema_hash
    relation["table"] = "other_product"
    assert schema_hash(order.table, relabelled) != order.schema_hash
    assert schema_hash("other_table", order.fields) != order.schema_hash


def test_diff_reads_as_added_removed_changed() -> None:
    old = copy.deepcopy(described(Product).fields)
    new = [f for f in copy.deepcopy(old) if f["name"] != "description"]
    next(f for f in new if f["name"] == "price")["max_digits"] = 12
    new.append({"name": "colour", "column": "colour", "type": "CharField", "max_length": 20, "null": True})
    lines = render_diff(diff_fields(old, new), indent="")
    assert lines == [
        "- description: TextField, null",
        "~ price: max_digits 10 -> 12",
        "+ colour: CharField(max_length=20), null",
    ]
    assert diff_fields(old, copy.deepcopy(old)) == []


def test_diff_shows_defaults_types_and_relations_readably() -> None:
    old = copy.deepcopy(described(Order).fields)
    new = copy.deepcopy(old)
    by_name = {f["name"]: f for f in new}
    by_name["status"]["default"] = {"value": "paid"}
    by_name["quantity"]["type"] = "BigIntegerField"
    by_name["product"]["relation"] = {**by_name["product"]["relation"], "table": "shop_item"}
    text = "\n".join(render_diff(diff_fields(old, new)))
    assert "~ quantity: type PositiveIntegerField -> BigIntegerField" in text
    assert "~ status: default 'new' -> 'paid'" in text
    assert "~ product: relation shop_product.id -> shop_item.id" in text


def test_dynamic_models_describe_back_to_the_recorded_hash() -> None:
    descriptions = [described(m) for m in [*SHOP, User]]
    built = build_models(descriptions)
    for description in descriptions:
        model = built[description.table]
        assert model._meta.managed is False
        assert model._meta.label == description.label
        again = describe_model(model, node_name=description.node_name)
        assert again.schema_hash == description.schema_hash, description.label
    order = built["shop_order"]
    assert order._meta.get_field("product").related_model is built["shop_product"]
    # The load's own app registry holds them, never the project's.
    from django.apps import apps

    assert order._meta.apps is not apps
    assert all(m._meta.apps is order._meta.apps for m in built.values())


def test_dynamic_relation_to_an_unknown_table_becomes_its_column() -> None:
    order = described(Order)
    built = build_models([order])  # shop_product and shop_customer are not part of this build
    fields = {f.name: f for f in built["shop_order"]._meta.concrete_fields}
    assert "product" not in fields
    assert isinstance(fields["product_id"], models.BigIntegerField)
    assert fields["product_id"].column == "product_id"
    assert fields["customer_id"].null is True


def test_written_model_code_reads_back_to_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    descriptions = [described(m) for m in SHOP]
    source = model_source(descriptions, code_labels={"auth_user": "auth.User"}, origin="the test")
    assert "managed = False" in source and "db_table = 'shop_order'" in source
    assert "@django_dataflow.register(name='Stock')" in source
    assert "models.ForeignKey('Product', on_delete=models.PROTECT" in source
    assert "default=django.utils.timezone.now" in source and "import django.utils.timezone" in source
    registered: list[type[models.Model]] = []

    def capture(model: Any = None, **options: Any) -> Any:
        def keep(cls: Any) -> Any:
            registered.append(cls)
            return cls

        return keep if model is None else keep(model)

    monkeypatch.setattr(django_dataflow, "register", capture)
    namespace: dict[str, Any] = {"__name__": "shop.generated_copy"}
    with isolate_apps("shop"):
        exec(compile(source, "generated.py", "exec"), namespace)  # the generated module
    by_table = {m._meta.db_table: m for m in registered}
    assert set(by_table) == {d.table for d in descriptions}
    for description in descriptions:
        assert describe_model(by_table[description.table]).schema_hash == description.schema_hash


def test_written_code_keeps_a_relation_to_a_table_it_has_no_model_for_as_a_column() -> None:
    source = model_source([described(Order)], code_labels={}, origin="the test")
    assert "product_id = models.BigIntegerField()  # references shop_product.id; no model for it" in source
    assert "customer_id = models.BigIntegerField(null=True, blank=True)" in source
    compile(source, "generated.py", "exec")
