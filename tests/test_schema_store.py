"""The registry table: written after migrate and by dataflow_sync, versioned, never at start-up."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_dataflow import conf
from django_dataflow.exceptions import RegistryError
from django_dataflow.models import ModelSchemaVersion, RegisteredModel
from django_dataflow.registry import get_entry, registry
from django_dataflow.schema_registry.description import describe_entry
from django_dataflow.schema_registry.store import owner_rows, prune, record, sync
from shop.models import Product

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def rows(application: str | None = None) -> dict[str, RegisteredModel]:
    found = RegisteredModel.objects.all()
    if application is not None:
        found = found.filter(application=application)
    return {row.label: row for row in found}


def test_migrate_recorded_every_registered_model() -> None:
    # pytest-django's test database was made by migrate, whose post_migrate wrote these rows.
    recorded = rows(conf.application())
    assert set(recorded) == {e.label for e in registry().entries() if not e.dynamic}
    product = recorded["shop.Product"]
    assert product.application == "testproject"  # no APPLICATION setting: the settings package
    assert (product.db_table, product.node_name, product.version) == ("shop_product", "Product", 1)
    assert product.schema_hash == describe_entry(get_entry(Product)).schema_hash
    assert product.managed and product.migrates and not product.dynamic
    assert [f["name"] for f in product.fields][:3] == ["id", "name", "sku"]
    assert recorded["shop.StockLevel"].node_name == "Stock"
    assert recorded["auth.User"].hidden_fields == ["password"]
    history = ModelSchemaVersion.objects.get(registered_model=product)
    assert (history.version, history.schema_hash) == (1, product.schema_hash)


def test_sync_again_changes_only_the_time() -> None:
    before = rows()["shop.Product"]
    results = sync()
    assert {r.status for r in results} == {"unchanged"}
    after = rows()["shop.Product"]
    assert after.version == 1 and after.schema_hash == before.schema_hash
    assert after.last_registered > before.last_registered
    assert after.first_registered == before.first_registered
    assert ModelSchemaVersion.objects.filter(registered_model=after).count() == 1


def test_a_changed_schema_is_a_new_version_with_history() -> None:
    description = describe_entry(get_entry(Product))
    changed = copy.deepcopy(description)
    next(f for f in changed.fields if f["name"] == "price")["max_digits"] = 12
    application = conf.application()
    [result] = record([changed], using="default", application=application, migrates=True)
    assert (result.label, result.status, result.version) == ("shop.Product", "changed", 2)
    [back] = record([description], using="default", application=application, migrates=True)
    assert (back.status, back.version) == ("changed", 3)  # back to the first hash: still a new version
    row = rows(application)["shop.Product"]
    versions = ModelSchemaVersion.objects.filter(registered_model=row)
    history = list(versions.values_list("version", "schema_hash"))
    assert history == [(1, description.schema_hash), (2, changed.schema_hash), (3, description.schema_hash)]
    stored = ModelSchemaVersion.objects.get(registered_model=row, version=2).fields
    assert next(f for f in stored if f["name"] == "price")["max_digits"] == 12


def test_applications_keep_their_own_rows() -> None:
    description = describe_entry(get_entry(Product))
    with override_settings(DATAFLOW={"APPLICATION": "billing", "ALLOW_MIGRATIONS": False}):
        results = sync()
    assert {r.status for r in results} == {"created"}
    billing = rows("billing")["shop.Product"]
    assert billing.migrates is False
    assert billing.schema_hash == description.schema_hash
    assert rows("testproject")["shop.Product"].migrates is True
    # The owner's row (recorded by an application that migrates) is the one to trust.
    assert owner_rows(RegisteredModel.objects.all())["shop_product"].application == "testproject"


def test_dataflow_sync_command_reports_and_prunes() -> None:
    RegisteredModel.objects.create(
        application="testproject", app_label="shop", model_name="Gone", node_name="Gone",
        db_table="shop_gone", fields=[], schema_hash="0" * 64,
    )
    out = StringIO()
    call_command("dataflow_sync", stdout=out)
    text = out.getvalue()
    assert "Application 'testproject', database 'default':" in text
    assert "unchanged  shop.Product  version 1" in text
    assert "pruned" not in text and "shop.Gone" in rows()
    call_command("dataflow_sync", "--prune", stdout=out)
    assert "pruned     shop.Gone" in out.getvalue()
    assert "shop.Gone" not in rows()
    assert prune() == []


class NoRegistryRouter:
    """Keeps django_dataflow's tables out of every database."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "django_dataflow" else None


def test_sync_without_the_registry_table_says_what_to_run() -> None:
    with override_settings(DATABASE_ROUTERS=[NoRegistryRouter()]):
        with pytest.raises(RegistryError, match=r"run 'manage\.py migrate django_dataflow' first"):
            sync()
        with pytest.raises(CommandError, match="does not exist in database 'default'"):
            call_command("dataflow_sync", stdout=StringIO())


def test_setup_writes_nothing_and_migrate_records(tmp_path: Path) -> None:
    """A fresh process: django.setup() runs no query; migrate then records the models."""
    database = tmp_path / "fresh.sqlite3"
    code = (
        "import django\n"
        "from django.db import connections\n"
        "django.setup()\n"
        "assert not [c for c in connections.all(initialized_only=True) if c.connection], 'connected'\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django_dataflow.models import RegisteredModel\n"
        "print(sorted(RegisteredModel.objects.values_list('app_label', 'model_name', 'version')))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
           "DATAFLOW_SQLITE_PATH": str(database)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([
        ("auth", "User", 1), ("shop", "Customer", 1), ("shop", "Order", 1), ("shop", "Product", 1),
        ("shop", "Shipment", 1), ("shop", "StockLevel", 1),
    ]))


@pytest.mark.parametrize(
    ("value", "check_id", "fragment"),
    [
        ({"APPLICATION": ""}, "django_dataflow.E003", "DATAFLOW['APPLICATION'] must be a name of 1 to 100"),
        ({"APPLICATION": "x" * 101}, "django_dataflow.E003", "DATAFLOW['APPLICATION'] must be a name"),
        ({"APPLICATION": 3}, "django_dataflow.E002", "DATAFLOW['APPLICATION'] must be str or NoneType"),
        ({"ALLOW_MIGRATIONS": "no"}, "django_dataflow.E002", "DATAFLOW['ALLOW_MIGRATIONS'] must be bool"),
    ],
)
def test_registry_settings_are_validated(value: dict[str, Any], check_id: str, fragment: str) -> None:
    from django_dataflow.checks import check_settings

    with override_settings(DATAFLOW=value):
        messages = check_settings()
        assert [m.id for m in messages] == [check_id]
        assert fragment in messages[0].msg
        with pytest.raises(ImproperlyConfigured, match=check_id.replace(".", r"\.")):
            conf.application()


def test_registry_settings_defaults_and_values() -> None:
    assert conf.application() == "testproject"
    with override_settings(DEBUG=False):  # hides settings.SETTINGS_MODULE
        assert conf.application() == "testproject"
    assert conf.allow_migrations() is True
    with override_settings(DATAFLOW={"APPLICATION": "  billing ", "ALLOW_MIGRATIONS": False}):
        assert conf.application() == "billing"
        assert conf.allow_migrations() is False


def test_new_node_options_update_the_row_without_a_version() -> None:
    description = describe_entry(get_entry(Product))
    description.node_name, description.hidden_fields = "Article", ["stock"]
    [result] = record([description], using="default", application=conf.application(), migrates=True)
    assert (result.status, result.version) == ("unchanged", 1)
    row = rows(conf.application())["shop.Product"]
    assert (row.node_name, row.hidden_fields) == ("Article", ["stock"])
    assert ModelSchemaVersion.objects.filter(registered_model=row).count() == 1


def test_a_concurrent_first_recording_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import IntegrityError

    from django_dataflow.schema_registry import store

    real, calls = store._record, []

    def racing(*args: Any) -> Any:
        calls.append(args[2])
        if len(calls) == 1:  # another process of this application inserted the rows first
            real(*args)
            raise IntegrityError("duplicate key value violates unique constraint")
        return real(*args)

    monkeypatch.setattr(store, "_record", racing)
    product = describe_entry(get_entry(Product))
    results = record([product], using="default", application="racer", migrates=True)
    assert calls == ["racer", "racer"]
    assert [(r.status, r.version) for r in results] == [("unchanged", 1)]
    assert RegisteredModel.objects.filter(application="racer").count() == 1


def test_post_migrate_handler_reports_at_verbosity_2_and_skips_databases_without_the_table() -> None:
    from django_dataflow.schema_registry.store import record_after_migrate

    out = StringIO()
    results = record_after_migrate("default", verbosity=2, stdout=out)
    count = len([e for e in registry().entries() if not e.dynamic])
    assert len(results) == count
    assert out.getvalue() == f"  Dataflow registry: {count} model(s) recorded, 0 changed\n"
    quiet = StringIO()
    record_after_migrate("default", verbosity=1, stdout=quiet)
    assert quiet.getvalue() == ""
    with override_settings(DATABASE_ROUTERS=[NoRegistryRouter()]):
        assert record_after_migrate("default", verbosity=2, stdout=quiet) == []
