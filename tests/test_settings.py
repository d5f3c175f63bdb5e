"""The DATAFLOW setting: accessors, system checks (E001-E003, W001), migrations, SQLite WAL."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import Error, Warning, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from django_dataflow import conf
from django_dataflow.checks import check_settings, check_sqlite_journal
from shop.models import Product
from tests.conftest import run


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


@pytest.fixture
def restore_cache() -> Iterator[None]:
    """Invalid settings raise at first use; make sure the valid values are reloaded after."""
    yield
    conf._values.cache_clear()
    assert conf.default_limit() == 100


# Accessors ---------------------------------------------------------------------------------------


def test_defaults() -> None:
    assert conf.default_limit() == 100
    assert conf.max_limit() == 10_000
    assert conf.database() == "default"
    assert conf.record_local_runs() is False
    assert conf.max_filter_depth() == 12
    assert conf.max_filter_terms() == 1_000
    assert conf.bulk_batch_size() == 1_000
    assert [m.label for m in conf.model_settings()] == ["auth.User"]
    assert conf.model_settings()[0].exclude_fields == ("password",)


def test_override_settings_reloads_accessors() -> None:
    assert conf.default_limit() == 100  # primes the cache
    with override_settings(DATAFLOW={"DEFAULT_LIMIT": 2, "MAX_LIMIT": 5, "BULK_BATCH_SIZE": 7,
                                     "RECORD_LOCAL_RUNS": True, "DATABASE": "other"}):
        assert conf.default_limit() == 2
        assert conf.max_limit() == 5
        assert conf.bulk_batch_size() == 7
        assert conf.record_local_runs() is True
        assert conf.database() == "other"
        assert conf.max_filter_depth() == 12  # unspecified keys keep their defaults
    assert conf.default_limit() == 100
    assert conf.database() == "default"


def test_no_dataflow_setting_means_defaults() -> None:
    with override_settings(DATAFLOW=None):
        assert conf.raw_settings() is None
        assert conf.default_limit() == 100
        assert conf.model_settings() == []
        assert check_settings() == []
    assert conf.model_settings()[0].label == "auth.User"


def test_absent_dataflow_setting_means_defaults(restore_cache: None) -> None:
    with override_settings():
        del settings.DATAFLOW
        conf._values.cache_clear()  # deleting a setting sends no setting_changed
        assert conf.raw_settings() is None
        assert conf.default_limit() == 100
        assert conf.model_settings() == []
        assert check_settings() == []


@pytest.mark.django_db
def test_default_limit_applies_to_list_nodes() -> None:
    Product.objects.bulk_create(Product(name=str(i), sku=str(i), price="1") for i in range(5))
    with override_settings(DATAFLOW={"DEFAULT_LIMIT": 2, "MAX_LIMIT": 3}):
        assert run([("ProductListNode", "l", {})])["l"]["count"] == 2
        from django_dataflow import WorkflowValidationError

        with pytest.raises(WorkflowValidationError) as info:
            run([("ProductListNode", "l", {"limit": 4})])
        assert "'limit' is 4, more than DATAFLOW['MAX_LIMIT'] (3)" in str(info.value)
    assert run([("ProductListNode", "l", {})])["l"]["count"] == 5


# Errors: system checks and first use --------------------------------------------------------------


E001, E002, E003 = "django_dataflow.E001", "django_dataflow.E002", "django_dataflow.E003"


@pytest.mark.parametrize(
    ("value", "check_id", "fragments"),
    [
        ({"DEFAULT_LIMT": 5}, E001, ["Unknown key DATAFLOW['DEFAULT_LIMT']", "DEFAULT_LIMIT"]),
        ({"MODELS": [], "CACHING": 1}, E001, ["DATAFLOW['CACHING']", "valid keys:", "MAX_LIMIT"]),
        ({"DEFAULT_LIMIT": "10"}, E002, ["DATAFLOW['DEFAULT_LIMIT'] must be int, not str"]),
        ({"MAX_LIMIT": True}, E002, ["DATAFLOW['MAX_LIMIT'] must be int, not bool"]),
        ({"RECORD_LOCAL_RUNS": 1}, E002, ["DATAFLOW['RECORD_LOCAL_RUNS'] must be bool, not int"]),
        ({"MODELS": "auth.User"}, E002, ["DATAFLOW['MODELS'] must be list or tuple, not str"]),
        ({"DATABASE": None}, E002, ["DATAFLOW['DATABASE'] must be str"]),
        (["MODELS"], E002, ["DATAFLOW must be a dict, not list"]),
        ({"DEFAULT_LIMIT": 200, "MAX_LIMIT": 100}, E003,
         ["DATAFLOW['DEFAULT_LIMIT'] (200) exceeds MAX_LIMIT (100)"]),
        ({"MAX_LIMIT": 0}, E003, ["DATAFLOW['MAX_LIMIT'] must be at least 1"]),
        ({"BULK_BATCH_SIZE": -5}, E003, ["DATAFLOW['BULK_BATCH_SIZE'] must be at least 1"]),
        ({"MODELS": ["User"]}, E003, ["DATAFLOW['MODELS'] entries must be"]),
        ({"MODELS": [{"model": "auth.User", "exclude": ["password"]}]}, E003,
         ["DATAFLOW['MODELS'] entries must be"]),
        ({"MODELS": [{"model": "auth.User", "exclude_fields": "password"}]}, E003,
         ["DATAFLOW['MODELS'] entries must be"]),
    ],
)
def test_invalid_settings_are_check_errors_and_fail_at_first_use(
    value: Any, check_id: str, fragments: list[str], restore_cache: None
) -> None:
    with override_settings(DATAFLOW=value):
        messages = check_settings()
        assert check_id in ids(messages)
        assert all(isinstance(m, Error) for m in messages)
        text = " ".join(m.msg for m in messages if m.id == check_id)
        for fragment in fragments:
            assert fragment in text
        # Django's own check framework reports it too.
        assert check_id in ids(run_checks())
        with pytest.raises(ImproperlyConfigured) as info:
            conf.default_limit()
        assert f"[{check_id}]" in str(info.value)
        for fragment in fragments:
            assert fragment in str(info.value)
        # The database check stays quiet while the settings themselves are broken.
        assert check_sqlite_journal() == []


def test_max_limit_zero_also_reports_default_above_max(restore_cache: None) -> None:
    with override_settings(DATAFLOW={"MAX_LIMIT": 0}):
        texts = [m.msg for m in check_settings()]
    assert any("exceeds MAX_LIMIT (0)" in t for t in texts)
    assert ids(check_settings()) == []  # back to the valid project settings


def test_manage_py_check_fails_on_invalid_settings(restore_cache: None) -> None:
    with override_settings(DATAFLOW={"UNKNOWN": 1}), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert "django_dataflow.E001" in str(info.value)
    assert "DATAFLOW['UNKNOWN']" in str(info.value)


@pytest.mark.django_db  # the drift checks (W101-W104) read the database
def test_valid_project_settings_pass_every_check() -> None:
    assert check_settings() == []
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


# W001: SQLite without WAL --------------------------------------------------------------------------


def databases(engine: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    database = {"ENGINE": engine, "NAME": "x"}
    if options is not None:
        database["OPTIONS"] = options
    return {"default": database}


@pytest.mark.parametrize(
    ("dbs", "warned"),
    [
        (databases("django.db.backends.sqlite3"), True),
        (databases("django.db.backends.sqlite3", {"timeout": 5}), True),
        (databases("django.db.backends.sqlite3", {"init_command": "PRAGMA synchronous=NORMAL;"}), True),
        (databases("django.db.backends.sqlite3", {"init_command": "PRAGMA journal_mode = WAL;"}), False),
        (databases("django.db.backends.sqlite3", {"init_command": "pragma JOURNAL_MODE=wal"}), False),
        (databases("django.db.backends.postgresql"), False),
    ],
    ids=["no-options", "no-init", "other-pragma", "wal-spaced", "wal-lowercase", "postgres"],
)
def test_w001_sqlite_without_wal(dbs: dict[str, Any], warned: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding setting DATABASES can lead to unexpected behavior"
        with override_settings(DATABASES=dbs):
            messages = check_sqlite_journal()
    assert ids(messages) == (["django_dataflow.W001"] if warned else [])
    if warned:
        assert isinstance(messages[0], Warning)
        assert "'default'" in messages[0].msg and "WAL" in messages[0].msg
        assert "journal_mode=WAL" in messages[0].hint


def test_w001_follows_the_configured_database_alias() -> None:
    dbs = {
        **databases("django.db.backends.postgresql"),
        "work": {"ENGINE": "django.db.backends.sqlite3", "NAME": "y"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with override_settings(DATABASES=dbs):
            assert check_sqlite_journal() == []
            with override_settings(DATAFLOW={"DATABASE": "work"}):
                messages = check_sqlite_journal()
    assert ids(messages) == ["django_dataflow.W001"]
    assert "'work'" in messages[0].msg


@pytest.mark.django_db
def test_w001_is_reported_by_the_check_framework() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with override_settings(DATABASES=databases("django.db.backends.sqlite3")):
            assert "django_dataflow.W001" in ids(run_checks(databases=["default"]))
            assert "django_dataflow.W001" in ids(run_checks(tags=["django_dataflow"]))
        with override_settings(DATABASES=databases("django.db.backends.sqlite3", settings.SQLITE_OPTIONS)):
            assert "django_dataflow.W001" not in ids(run_checks(databases=["default"]))


# Migrations and the database ------------------------------------------------------------------------


@pytest.mark.django_db
def test_makemigrations_check_finds_nothing_to_do() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # SystemExit(1) on changes
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_app_tables_come_from_migrate() -> None:
    from django_dataflow.models import WorkflowRun

    tables = connection.introspection.table_names()
    assert WorkflowRun._meta.db_table in tables
    out = StringIO()
    call_command("showmigrations", "django_dataflow", stdout=out)
    assert "[X] 0001_initial" in out.getvalue()


def test_project_sqlite_options_ask_for_wal() -> None:
    options = settings.SQLITE_OPTIONS
    assert "journal_mode=WAL" in options["init_command"].replace(" ", "")
    if connection.vendor == "sqlite":
        assert settings.DATABASES["default"]["OPTIONS"] is options


def test_sqlite_file_database_really_uses_wal(tmp_path: Any, django_db_blocker: Any) -> None:
    """Open file databases with and without the project's SQLite options: the pragma takes effect."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    base = {
        "ENGINE": "django.db.backends.sqlite3", "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False, "TIME_ZONE": None, "USER": "", "PASSWORD": "",
        "HOST": "", "PORT": "", "TEST": {},
    }

    def pragmas(name: str, options: dict[str, Any]) -> tuple[str, int]:
        probe = DatabaseWrapper({**base, "NAME": str(tmp_path / name), "OPTIONS": options}, alias=name)
        try:
            with django_db_blocker.unblock(), probe.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode")
                mode = cursor.fetchone()[0].lower()
                cursor.execute("PRAGMA synchronous")
                return mode, cursor.fetchone()[0]
        finally:
            probe.close()

    assert pragmas("wal.sqlite3", dict(settings.SQLITE_OPTIONS)) == ("wal", 1)  # 1 = NORMAL
    assert pragmas("plain.sqlite3", {}) == ("delete", 2)  # SQLite's defaults: DELETE, FULL


@pytest.mark.django_db
def test_test_database_journal_mode() -> None:
    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        assert "OPTIONS" not in settings.DATABASES["default"] or "init_command" not in settings.DATABASES[
            "default"
        ]["OPTIONS"]
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0].lower()
    if connection.is_in_memory_db():
        assert mode == "memory"  # in-memory databases cannot use WAL; the settings still ask for it
        assert "journal_mode=WAL" in connection.settings_dict["OPTIONS"]["init_command"].replace(" ", "")
    else:
        assert mode == "wal"
