"""Drift checks (W101-W104, I101/I102) and manage.py dataflow_check."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import call_command
from django.db import OperationalError, connection, models
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from django.test.utils import isolate_apps

from django_dataflow import conf
from django_dataflow.checks import check_model_drift
from django_dataflow.models import RegisteredModel
from django_dataflow.registry import get_entry, registry
from django_dataflow.schema_registry.description import describe_entry
from shop.models import Product
from tests.test_schema_store import NoRegistryRouter


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def run_check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("dataflow_check", *args, stdout=out, no_color=True)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def other_application_row(application: str = "billing", **changes: Any) -> RegisteredModel:
    """Another application's record of shop_product, with some fields changed."""
    description = describe_entry(get_entry(Product))
    fields = copy.deepcopy(description.fields)
    for name, values in changes.items():
        next(f for f in fields if f["name"] == name).update(values)
    fields = [f for f in fields if f["name"] != "description"]
    fields.append({"name": "colour", "column": "colour", "type": "CharField", "max_length": 20, "null": True})
    from django_dataflow.schema_registry.description import schema_hash

    return RegisteredModel.objects.create(
        application=application, app_label="shop", model_name="Product", node_name="Product",
        db_table="shop_product", fields=fields, schema_hash=schema_hash("shop_product", fields), version=4,
    )


@pytest.mark.django_db
def test_no_drift_on_the_migrated_test_database() -> None:
    assert check_model_drift() == []
    code, text = run_check()
    assert code == 0
    assert "No drift: application 'testproject', database 'default'." in text


@pytest.mark.django_db
def test_w103_another_application_disagrees_with_a_readable_diff() -> None:
    other_application_row(price={"max_digits": 12})
    messages = check_model_drift()
    assert ids(messages) == ["django_dataflow.W103"]
    message = messages[0]
    assert isinstance(message, checks.Warning)
    assert message.obj == "shop.Product"
    assert "this application ('testproject', code) and application 'billing'" in message.msg
    assert "(shop.Product, version 4, recorded " in message.msg
    assert "here -> 'billing':" in message.msg
    lines = message.msg.splitlines()[1:]
    assert lines == [
        "    - description: TextField, null",
        "    ~ price: max_digits 10 -> 12",
        "    + colour: CharField(max_length=20), null",
    ]
    code, text = run_check()
    assert code == 1
    assert "[W103] shop.Product (table shop_product)" in text
    assert "    ~ price: max_digits 10 -> 12" in text
    assert "Drift: 1 problem(s)." in text
    code, text = run_check("--json")
    [finding] = json.loads(text)
    assert code == 1
    assert finding["id"] == "django_dataflow.W103"
    assert finding["details"] == [
        "- description: TextField, null",
        "~ price: max_digits 10 -> 12",
        "+ colour: CharField(max_length=20), null",
    ]


@pytest.mark.django_db
def test_w103_compares_a_recorded_copy_when_this_application_has_no_code() -> None:
    fields = [{"name": "id", "column": "id", "type": "BigAutoField", "primary_key": True, "unique": True}]
    mine = [*fields, {"name": "title", "column": "title", "type": "CharField", "max_length": 50}]
    theirs = [*fields, {"name": "title", "column": "title", "type": "CharField", "max_length": 80}]
    from django_dataflow.schema_registry.description import schema_hash

    for application, columns, dynamic in (("testproject", mine, True), ("owner", theirs, False)):
        RegisteredModel.objects.create(
            application=application, app_label="things", model_name="Thing", node_name="Thing",
            db_table="things_thing", fields=columns, schema_hash=schema_hash("things_thing", columns),
            dynamic=dynamic, managed=not dynamic,
        )
    [message] = check_model_drift()
    assert message.id == "django_dataflow.W103"
    assert "('testproject', recorded copy, version 1) and application 'owner'" in message.msg
    assert "~ title: max_length 50 -> 80" in message.msg


@pytest.mark.django_db
def test_equal_schemas_of_two_applications_are_no_drift() -> None:
    description = describe_entry(get_entry(Product))
    RegisteredModel.objects.create(
        application="billing", app_label="billing", model_name="Product", node_name="Product",
        db_table="shop_product", fields=description.fields, schema_hash=description.schema_hash,
    )
    assert check_model_drift() == []


@pytest.fixture
def registered_elsewhere() -> Iterator[list[type[models.Model]]]:
    """Models a test registers; unregistered afterwards."""
    added: list[type[models.Model]] = []
    yield added
    for model in added:
        registry().remove(model)


@pytest.mark.django_db
@isolate_apps("shop")
def test_w104_missing_table_and_columns(registered_elsewhere: list[Any]) -> None:
    class ProductWithColour(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=200)
        colour = models.CharField(max_length=20)

        class Meta:
            app_label = "shop"
            db_table = "shop_product"
            managed = False

    class Nowhere(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "shop"
            db_table = "shop_nowhere"
            managed = False

    for model in (ProductWithColour, Nowhere):
        registry().add(model, name=None, exclude_fields=())
        registered_elsewhere.append(model)
    messages = {m.obj: m for m in check_model_drift()}
    assert messages["shop.ProductWithColour"].id == "django_dataflow.W104"
    assert "lacks 1 column(s)" in messages["shop.ProductWithColour"].msg
    assert "    - colour (colour: CharField)" in messages["shop.ProductWithColour"].msg
    assert messages["shop.Nowhere"].id == "django_dataflow.W104"
    nowhere = messages["shop.Nowhere"].msg
    assert "Table 'shop_nowhere' of registered model shop.Nowhere does not exist" in nowhere
    assert run_check()[0] == 1


@pytest.mark.django_db
def test_w101_unapplied_migration_of_a_registered_models_app() -> None:
    MigrationRecorder.Migration.objects.filter(app="shop").delete()
    messages = check_model_drift()
    assert ids(messages) == ["django_dataflow.W101"]  # no W104 for the tables it would create
    assert messages[0].obj == "shop"
    assert "App 'shop' has 2 unapplied migration(s) on database 'default'" in messages[0].msg
    assert "    shop.0001_initial" in messages[0].msg
    assert "dataflow_migrate --plan" in messages[0].hint


@pytest.mark.django_db
def test_w102_model_change_without_a_migration() -> None:
    field = Product._meta.get_field("name")
    field.max_length = 300
    try:
        messages = check_model_drift()
    finally:
        field.max_length = 200
    assert ids(messages) == ["django_dataflow.W102"]
    assert "App 'shop' has model changes without a migration" in messages[0].msg
    assert "    Alter field name on product" in messages[0].msg
    assert messages[0].hint == "Run manage.py makemigrations shop."


@pytest.mark.django_db
def test_checks_follow_the_app_labels_asked_for() -> None:
    other_application_row()
    assert ids(check_model_drift(app_configs=[apps.get_app_config("auth")])) == []
    assert ids(check_model_drift(app_configs=[apps.get_app_config("shop")])) == ["django_dataflow.W103"]
    assert run_check("auth")[0] == 0
    assert run_check("shop")[0] == 1


def test_unreachable_database_is_information_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    [message] = check_model_drift()
    assert isinstance(message, checks.Info)
    assert message.id == "django_dataflow.I101"
    assert "database 'default' is not reachable (OperationalError: connection refused)" in message.msg
    code, text = run_check()
    assert code == 2
    assert "Could not check: the database is not reachable." in text


def test_blocked_database_access_does_not_break_manage_py_check() -> None:
    # pytest-django blocks the database here, as an unreachable server would: check still runs.
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "django_dataflow.I101" in err.getvalue() + out.getvalue()
    assert "django_dataflow.W" not in err.getvalue() + out.getvalue()


@pytest.mark.django_db
def test_unmigrated_registry_table_skips_only_the_comparison() -> None:
    with override_settings(DATABASE_ROUTERS=[NoRegistryRouter()]):
        messages = check_model_drift()
    assert ids(messages) == ["django_dataflow.I102"]
    assert "not compared with other applications' records" in messages[0].msg
    assert messages[0].hint == "Run manage.py migrate django_dataflow."


def test_drift_checks_stay_quiet_while_settings_are_invalid() -> None:
    with override_settings(DATAFLOW={"UNKNOWN": 1}):
        assert check_model_drift() == []
    assert conf.application() == "testproject"


@pytest.mark.django_db
def test_another_applications_recorded_copy_warns_that_application_not_this_one() -> None:
    row = other_application_row("reporting", price={"max_digits": 12})
    row.dynamic, row.managed = True, False  # reporting's baseline, from dataflow_discover --record
    row.save()
    assert check_model_drift() == []  # the owner's deploy is not blocked by a consumer's baseline
    with override_settings(DATAFLOW={"APPLICATION": "reporting"}):
        # reporting has code for shop_product here, so its code is its view: it agrees with the owner.
        assert check_model_drift() == []
