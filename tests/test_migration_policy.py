"""Migration risk levels (dataflow_migrate --plan) and DATAFLOW['ALLOW_MIGRATIONS']."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState
from django.test import override_settings

from django_dataflow.models import RegisteredModel
from django_dataflow.schema_registry.policy import forbidden_migrations, refuse_if_forbidden
from django_dataflow.schema_registry.risk import Risk, altering_risk, classify, classify_backwards

pytestmark = pytest.mark.django_db


def state() -> ProjectState:
    """One existing model, shop.item, with the fields the cases alter."""
    project = ProjectState()
    project.add_model(
        ModelState(
            "shop", "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=100)),
                ("price", models.DecimalField(max_digits=10, decimal_places=2)),
                ("count", models.IntegerField()),
                ("notes", models.TextField(null=True)),
                ("code", models.CharField(max_length=10)),
            ],
        )
    )
    return project


@pytest.mark.parametrize(
    ("operation", "risk", "reason"),
    [
        (migrations.AddField("item", "colour", models.TextField(null=True)), Risk.LOW, "nullable"),
        (migrations.AddField("item", "size", models.IntegerField(default=1)), Risk.MEDIUM, "with a default"),
        (migrations.AddField("item", "size", models.IntegerField()), Risk.MEDIUM, "fails if the table has"),
        (migrations.RemoveField("item", "notes"), Risk.HIGH, "drops the column"),
        (migrations.DeleteModel("Item"), Risk.HIGH, "drops the table"),
        (migrations.AlterField("item", "name", models.CharField(max_length=200)), Risk.MEDIUM, "widening"),
        (migrations.AlterField("item", "name", models.CharField(max_length=50)), Risk.HIGH, "narrowing"),
        (migrations.AlterField("item", "name", models.TextField()), Risk.MEDIUM, "CharField -> TextField"),
        (migrations.AlterField("item", "count", models.BigIntegerField()), Risk.MEDIUM, "widening"),
        (migrations.AlterField("item", "count", models.SmallIntegerField()), Risk.HIGH, "converted"),
        (migrations.AlterField("item", "code", models.IntegerField()), Risk.HIGH, "CharField -> Integer"),
        (migrations.AlterField("item", "price", models.DecimalField(max_digits=12, decimal_places=2)),
         Risk.MEDIUM, "numeric(10,2) -> numeric(12,2): widening"),
        (migrations.AlterField("item", "price", models.DecimalField(max_digits=10, decimal_places=3)),
         Risk.HIGH, "narrowing"),
        (migrations.AlterField("item", "notes", models.TextField()), Risk.MEDIUM, "NOT NULL"),
        (migrations.AlterField("item", "name", models.CharField(max_length=100, null=True)),
         Risk.LOW, "nullable"),
        (migrations.AlterField("item", "name", models.CharField(max_length=100, unique=True)),
         Risk.MEDIUM, "duplicate"),
        (migrations.AlterField("item", "name", models.CharField(max_length=100, help_text="x")),
         Risk.LOW, "no column type change"),
        (migrations.RenameField("item", "name", "title"), Risk.MEDIUM, "rename: other applications"),
        (migrations.AddIndex("item", models.Index(fields=["name"], name="item_name")), Risk.LOW, "index"),
        (migrations.RunSQL("SELECT 1"), Risk.MEDIUM, "not analysed"),
        (migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))]),
         Risk.LOW, "new table"),
    ],
)
def test_forward_operations(operation: Any, risk: Risk, reason: str) -> None:
    found, why = classify(operation, "shop", state(), set())
    assert found is risk, why
    assert reason in why


def test_anything_on_a_table_created_in_the_same_plan_is_low() -> None:
    created: set[tuple[str, str]] = set()
    create = migrations.CreateModel("Fresh", [("id", models.BigAutoField(primary_key=True))])
    assert classify(create, "shop", state(), created) == (Risk.LOW, "new table")
    dropped, why = classify(migrations.RemoveField("fresh", "old"), "shop", state(), created)
    assert dropped is Risk.LOW and "created earlier in this plan" in why


def test_backward_operations() -> None:
    before, after = state(), state()
    assert classify_backwards(migrations.AddField("item", "x", models.IntegerField(null=True)), "shop",
                              before, after)[0] is Risk.HIGH
    assert classify_backwards(migrations.CreateModel("Item", []), "shop", before, after)[0] is Risk.HIGH
    assert classify_backwards(migrations.RemoveField("item", "notes"), "shop", before, after) == (
        Risk.LOW, "nullable column"
    )
    widened = state()
    widened.models["shop", "item"].fields["name"] = models.CharField(max_length=300)
    risk, why = classify_backwards(
        migrations.AlterField("item", "name", models.CharField(max_length=300)), "shop", before, widened
    )
    assert risk is Risk.HIGH and "max_length 300 -> 100" in why  # undoing a widening narrows


def test_several_changes_to_one_column_take_the_highest_risk() -> None:
    risk, why = altering_risk(models.CharField(max_length=100, null=True), models.CharField(max_length=50))
    assert risk is Risk.HIGH
    assert "narrowing" in why and "NOT NULL" in why


def plan_output(*args: str) -> str:
    out = StringIO()
    call_command("dataflow_migrate", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_dataflow_migrate_plan_on_an_up_to_date_database() -> None:
    assert plan_output("--plan").strip() == "No migrations to apply."


def test_dataflow_migrate_plan_marks_registered_models_and_refuses_high() -> None:
    # Pretend shop's initial migration is not applied: the plan recreates its tables (LOW), and
    # migrating back to zero would drop them (HIGH).
    text = plan_output("shop", "zero", "--plan")
    assert "  shop.0001_initial" in text
    assert "   * HIGH   Undo Create model Product: undoing it drops the table and every row in it" in text
    assert "(* changes a dataflow-registered model)" in text
    assert "HIGH-risk operation(s): applying needs --allow-data-loss." in text
    with pytest.raises(CommandError, match="Refused: 5 HIGH-risk operation") as caught:
        plan_output("shop", "zero")
    assert "--allow-data-loss" in str(caught.value)
    assert "shop_product" in connection.introspection.table_names()  # nothing was dropped
    MigrationRecorder.Migration.objects.filter(app="shop").delete()
    text = plan_output("shop", "--plan")
    assert "   * LOW    Create model Product: new table" in text
    assert "HIGH" not in text


@pytest.mark.parametrize(("args", "message"), [
    (("nope",), "App 'nope' does not have migrations"),
    (("shop", "9999"), "No migration of 'shop' matches '9999'"),
])
def test_dataflow_migrate_bad_targets(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        plan_output(*args, "--plan")


# ALLOW_MIGRATIONS ---------------------------------------------------------------------------------


def shop_plan() -> list[tuple[Any, bool]]:
    loader = MigrationLoader(None)
    return [(loader.get_migration("shop", "0001_initial"), False)]


def test_forbidden_migrations_name_the_registered_models() -> None:
    [found] = forbidden_migrations(shop_plan())
    assert found.migration == "shop.0001_initial"
    assert found.models == ["shop.Customer", "shop.Order", "shop.Product", "shop.StockLevel"]
    assert found.tables == {"shop_customer", "shop_order", "shop_product", "shop_stocklevel"}
    loader = MigrationLoader(None)
    assert forbidden_migrations([(loader.get_migration("sessions", "0001_initial"), False)]) == []


def test_allowed_process_migrates_and_refusing_one_names_who_may() -> None:
    refuse_if_forbidden(shop_plan(), using="default")  # ALLOW_MIGRATIONS defaults to true
    with override_settings(DATAFLOW={"APPLICATION": "worker", "ALLOW_MIGRATIONS": False}):
        with pytest.raises(CommandError) as caught:
            refuse_if_forbidden(shop_plan(), using="default")
    message = str(caught.value)
    assert "DATAFLOW['ALLOW_MIGRATIONS'] is false in application 'worker'" in message
    assert "shop.0001_initial (shop.Customer, shop.Order, shop.Product, shop.StockLevel)" in message
    assert "allowed to apply them, per the model registry: 'testproject'" in message


def test_refusal_when_no_application_is_allowed_yet() -> None:
    RegisteredModel.objects.update(migrates=False)
    with override_settings(DATAFLOW={"ALLOW_MIGRATIONS": False}):
        with pytest.raises(CommandError, match="No application has recorded itself as allowed"):
            refuse_if_forbidden(shop_plan(), using="default")
        refuse_if_forbidden([], using="default")  # nothing to apply: nothing to refuse


def test_migrate_itself_refuses_before_touching_anything() -> None:
    MigrationRecorder.Migration.objects.filter(app="shop").delete()
    with override_settings(DATAFLOW={"APPLICATION": "worker", "ALLOW_MIGRATIONS": False}):
        with pytest.raises(CommandError, match="migrate refused"):
            call_command("migrate", "shop", verbosity=0)
        with pytest.raises(CommandError, match="migrate refused"):
            plan_output("shop")
    assert not MigrationRecorder.Migration.objects.filter(app="shop").exists()
