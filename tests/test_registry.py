"""The model registry: node classes, names, options, settings-registered models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.db import models

import django_dataflow
from django_dataflow import WorkflowValidationError
from django_dataflow.registry import (
    get_entry,
    get_node_class,
    models_registered,
    node_types,
    register,
    unregister,
)
from shop.models import Customer, Order, Product, StockLevel
from tests.conftest import build, run

OPS = [
    "Create", "Read", "Update", "Delete", "List", "Count", "Aggregate",
    "BulkCreate", "BulkUpdate", "BulkDelete", "BulkUpsert",
]


@pytest.fixture
def cleanup() -> Iterator[list[type[models.Model]]]:
    """Models a test registers; unregistered afterwards, whatever happened."""
    added: list[type[models.Model]] = []
    yield added
    for model in added:
        unregister(model)
    assert get_entry(Group) is None and get_entry(Permission) is None


def test_get_node_class_returns_the_generated_class() -> None:
    cls = get_node_class("ProductCreateNode")
    assert cls is not None
    assert cls.__name__ == cls.type_name == "ProductCreateNode"
    assert cls.model is Product
    assert cls.operation == "Create"
    assert cls.writes is True
    assert get_node_class("OrderListNode").model is Order


@pytest.mark.parametrize("name", ["NopeCreateNode", "ProductCreate", "productcreatenode", ""])
def test_get_node_class_returns_none_when_unknown(name: str) -> None:
    assert get_node_class(name) is None


@pytest.mark.parametrize("model", [Product, "shop.Product"])
def test_node_types_lists_every_operation(model: Any) -> None:
    names = node_types(model)
    assert set(names) >= {f"Product{op}Node" for op in OPS}
    assert all(get_node_class(name).model is Product for name in names)
    assert len(names) == len(set(names))


def test_node_types_of_every_model_and_of_an_unregistered_model() -> None:
    everything = set(node_types())
    for name in ("Customer", "Product", "Order", "Stock", "User"):
        assert {f"{name}{op}Node" for op in OPS} <= everything
    assert node_types(Group) == []
    assert node_types("no_such.Model") == []
    assert {Customer, Product, Order, StockLevel, User} <= set(models_registered())


def test_register_with_name_renames_the_nodes() -> None:
    assert get_node_class("StockCreateNode").model is StockLevel
    assert get_node_class("StockLevelCreateNode") is None
    assert get_entry(StockLevel).name == "Stock"
    assert get_entry("shop.StockLevel") is get_entry(StockLevel)


@pytest.mark.django_db
def test_renamed_nodes_run() -> None:
    product = Product.objects.create(name="Lamp", sku="L-1", price="1.00")
    results = run([("StockCreateNode", "s", {"product_id": product.pk, "warehouse": "north", "quantity": 4})])
    assert StockLevel.objects.get().quantity == 4
    assert results["s"]["warehouse"] == "north"


def test_two_models_with_one_name_is_an_error_naming_both(cleanup: list[Any]) -> None:
    cleanup.append(Group)
    with pytest.raises(ImproperlyConfigured) as info:
        register(Group, name="Product")
    message = str(info.value)
    assert "shop.Product" in message and "auth.Group" in message
    assert "'Product'" in message
    assert "name=" in message  # says how to resolve it
    assert get_entry(Group) is None
    assert get_node_class("ProductCreateNode").model is Product  # the first one is untouched


def test_default_name_clash_with_a_renamed_model(cleanup: list[Any]) -> None:
    cleanup.extend([Group, Permission])
    register(Group)
    with pytest.raises(ImproperlyConfigured) as info:
        register(Permission, name="Group")
    assert "auth.Group" in str(info.value) and "auth.Permission" in str(info.value)
    register(Permission, name="Perm")  # name= resolves it
    assert get_node_class("PermCreateNode").model is Permission
    assert get_node_class("GroupCreateNode").model is Group


def test_register_after_start_generates_nodes_and_unregister_removes_them(cleanup: list[Any]) -> None:
    cleanup.append(Group)
    assert register(Group) is Group  # returns the model, as a decorator must
    assert set(node_types(Group)) >= {f"Group{op}Node" for op in OPS}
    assert get_node_class("GroupCreateNode").model is Group
    unregister(Group)
    assert get_node_class("GroupCreateNode") is None
    assert node_types(Group) == []
    with pytest.raises(WorkflowValidationError, match="unknown node type 'GroupCreateNode'"):
        build([("GroupCreateNode", "g", {"name": "staff"})])


def test_decorator_forms(cleanup: list[Any]) -> None:
    cleanup.append(Group)
    decorated = django_dataflow.register(name="Team", exclude_fields=["name"])(Group)
    assert decorated is Group
    assert get_node_class("TeamCreateNode").model is Group
    assert "name" not in get_node_class("TeamCreateNode").param_descriptions()


def test_same_model_same_options_is_a_no_op(cleanup: list[Any]) -> None:
    cleanup.append(Group)
    register(Group, name="Team", exclude_fields=["name"])
    entry = get_entry(Group)
    create = get_node_class("TeamCreateNode")
    register(Group, name="Team", exclude_fields=("name",))
    assert get_entry(Group) is entry
    assert get_node_class("TeamCreateNode") is create
    # Registering Product again exactly as its decorator did changes nothing either.
    product_create = get_node_class("ProductCreateNode")
    register(Product)
    assert get_node_class("ProductCreateNode") is product_create


@pytest.mark.parametrize(
    ("second", "fragment"),
    [({"name": "Crew"}, "name 'Team' vs 'Crew'"), ({"name": "Team", "exclude_fields": []}, "exclude_fields")],
)
def test_same_model_different_options_is_an_error(
    second: dict[str, Any], fragment: str, cleanup: list[Any]
) -> None:
    cleanup.append(Group)
    register(Group, name="Team", exclude_fields=["name"])
    with pytest.raises(ImproperlyConfigured) as info:
        register(Group, **second)
    assert "auth.Group is registered twice with different options" in str(info.value)
    assert fragment in str(info.value)
    assert get_entry(Group).name == "Team"
    assert get_node_class("CrewCreateNode") is None


def test_exclude_fields_naming_a_non_field(cleanup: list[Any]) -> None:
    cleanup.append(Group)
    with pytest.raises(ImproperlyConfigured) as info:
        register(Group, exclude_fields=["colour"])
    assert "exclude_fields of auth.Group names 'colour', which is not a field" in str(info.value)
    # A refused registration leaves nothing behind; a corrected one then succeeds.
    assert get_entry(Group) is None
    assert get_node_class("GroupCreateNode") is None
    register(Group)
    assert get_node_class("GroupCreateNode").model is Group


@pytest.mark.parametrize("name", ["not valid", "1Bad", "a-b"])
def test_node_name_must_be_an_identifier(name: str, cleanup: list[Any]) -> None:
    cleanup.append(Group)
    with pytest.raises(ImproperlyConfigured, match="is not an identifier"):
        register(Group, name=name)
    assert get_entry(Group) is None


@pytest.mark.parametrize("thing", [object(), "shop.Product", int])
def test_register_refuses_non_models(thing: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="takes a Django model class"):
        register(thing)


def test_abstract_model_refused() -> None:
    class Base(models.Model):
        title = models.CharField(max_length=10)

        class Meta:
            abstract = True

    with pytest.raises(ImproperlyConfigured) as info:
        register(Base)
    assert "Base is abstract and cannot be registered" in str(info.value)
    assert get_node_class("BaseCreateNode") is None


# DATAFLOW["MODELS"] dict form: auth.User with password excluded --------------------------------


def test_user_registered_from_settings_without_password() -> None:
    entry = get_entry(User)
    assert entry is not None
    assert entry.name == "User"
    assert entry.exclude_fields == frozenset({"password"})
    params = get_node_class("UserCreateNode").param_descriptions()
    assert "username" in params
    assert "password" not in params


@pytest.mark.django_db
def test_user_create_refuses_password_param(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        build([("UserCreateNode", "u", {"username": "ada", "password": "secret"})])
    message = str(info.value)
    assert "unknown param 'password' for UserCreateNode" in message
    assert "username" in message


@pytest.mark.django_db
def test_user_records_never_carry_the_password() -> None:
    user = User.objects.create_user("ada", "ada@example.com", "s3cret-pass")
    results = run(
        [
            ("UserReadNode", "read", {"id": user.pk}),
            ("UserListNode", "list", {}),
            ("UserCreateNode", "new", {"username": "bob"}),
            ("UserUpdateNode", "upd", {"id": user.pk, "fields": {"first_name": "Ada"}}),
        ]
    )
    assert results["read"]["username"] == "ada"
    for record in (results["read"], results["new"], results["upd"], *results["list"]["records"]):
        assert "password" not in record
        assert "username" in record
    user.refresh_from_db()
    assert user.check_password("s3cret-pass")  # the update did not touch the hidden field
    assert user.first_name == "Ada"


@pytest.mark.django_db
def test_user_list_cannot_ask_for_or_filter_on_password(unchanged_db: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        build([("UserListNode", "l", {"fields": ["username", "password"]})])
    assert "password" in str(info.value)
    with pytest.raises(WorkflowValidationError) as info:
        build([("UserCountNode", "c", {"filter": {"password": {"$ne": ""}}})])
    assert "password" in str(info.value)


def test_names_whose_node_types_collide_are_refused(cleanup: list[Any]) -> None:
    # "ProductBulk" + "Create" and "Product" + "BulkCreate" would both be ProductBulkCreateNode.
    with pytest.raises(ImproperlyConfigured, match=r"shop\.Product") as caught:
        register(Group, name="ProductBulk")
    assert "auth.Group" in str(caught.value)
    assert get_entry(Group) is None
    assert get_node_class("ProductBulkCreateNode").model is Product


def test_node_classes_are_generated_per_model_on_first_lookup(cleanup: list[Any]) -> None:
    entry = register(Group) and get_entry(Group)
    cleanup.append(Group)
    assert "nodes" not in entry.__dict__
    assert "GroupListNode" in node_types(Group)
    assert "nodes" not in entry.__dict__  # listing names builds nothing
    cls = get_node_class("GroupListNode")
    assert cls is entry.nodes["List"] and cls.model is Group
