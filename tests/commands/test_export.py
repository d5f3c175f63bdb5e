"""manage.py dataflow_export, and export -> import round trips."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from shop.models import Customer, Order, Product
from tests.commands.helpers import call

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db: Any) -> list[Product]:
    return [
        Product.objects.create(name="Lamp", sku="L-1", price="19.99", stock=5, description=None),
        Product.objects.create(
            name="Desk", sku="D-1", price="120.00", stock=2, active=False, description="a,b\nc"
        ),
        Product.objects.create(name="Chair", sku="C-1", price="45.50", stock=0, description="plain"),
    ]


def test_csv_export_of_every_visible_field(catalog: list[Product]) -> None:
    code, out, err = call("dataflow_export", "shop.Product")
    assert code == 0 and "Exported 3 shop.Product record(s)" in err
    rows = list(csv.DictReader(StringIO(out)))
    assert list(rows[0]) == [
        "id",
        "name",
        "sku",
        "price",
        "stock",
        "active",
        "description",
        "created_at",
        "updated_at",
    ]
    assert [r["sku"] for r in rows] == ["L-1", "D-1", "C-1"]  # primary key order by default
    assert (
        rows[1]["price"] == "120.00" and rows[1]["active"] == "false" and rows[1]["description"] == "a,b\nc"
    )
    assert rows[0]["description"] == ""  # NULL


def test_filter_order_fields_and_jsonl(catalog: list[Product]) -> None:
    code, out, _ = call(
        "dataflow_export",
        "shop.Product",
        "--filter",
        '{"price": {"$lt": 100}}',
        "--order=-price",
        "--fields",
        "sku,price",
        "stock",
        "--format",
        "jsonl",
    )
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"sku": "C-1", "price": "45.50", "stock": 0},
        {"sku": "L-1", "price": "19.99", "stock": 5},
    ]


def test_excluded_fields_never_leave(db: Any) -> None:
    User.objects.create_user("ada", password="secret-password")
    code, out, _ = call("dataflow_export", "auth.User", "--format", "jsonl")
    assert code == 0 and "ada" in out
    assert "password" not in out and "pbkdf2" not in out
    code, _, message = call("dataflow_export", "auth.User", "--fields", "password")
    assert code == 2 and "unknown field 'password'" in message
    code, _, message = call("dataflow_export", "auth.User", "--filter", '{"password": {"$startswith": "p"}}')
    assert code == 2 and "password" in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["shop.Nope"], "'shop.Nope' is not a model registered"),
        (["shop.Product", "--filter", "{price"], "--filter is not valid JSON"),
        (["shop.Product", "--filter", '{"pricey": 1}'], "unknown field 'pricey'"),
        (["shop.Product", "--filter", '{"price": {"$near": 1}}'], "unknown operator '$near' on 'price'"),
        (["shop.Product", "--filter", '{"price": {"$lt": "cheap"}}'], "price"),
        (["shop.Product", "--order", "colour"], "colour"),
        (["shop.Product", "--output", "out.txt"], "cannot tell the format"),
        (["shop.Product", "--user", "nobody"], "no such user"),
        (["shop.Product", "--chunk-size", "0"], "--chunk-size must be at least 1"),
    ],
)
def test_usage_errors_exit_2(catalog: list[Product], args: list[str], expected: str) -> None:
    code, _, message = call("dataflow_export", *args)
    assert code == 2
    assert expected in message


def test_output_file_only_replaced_on_success(catalog: list[Product], tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    assert call("dataflow_export", "shop.Product", "--output", target)[0] == 0
    assert len(target.read_text().splitlines()) == 3
    target.write_text("previous\n")
    assert call("dataflow_export", "shop.Product", "--output", target, "--filter", '{"x": 1}')[0] == 2
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_view_permission_and_exit_code_1(catalog: list[Product]) -> None:
    user = User.objects.create_user("clerk")
    code, _, message = call("dataflow_export", "shop.Product", "--user", "clerk")
    assert code == 1 and "shop.view_product" in message
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    assert call("dataflow_export", "shop.Product", "--user", "clerk")[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip(tmp_path: Path, fmt: str, catalog: list[Product]) -> None:
    ada = Customer.objects.create(name="Ada", email="ada@example.com", metadata={"tags": ["a", 1], "n": None})
    Customer.objects.create(name="Bob", email="bob@example.com")
    Order.objects.create(product=catalog[0], customer=ada, quantity=2, reference=None, notes="x")
    Order.objects.create(product=catalog[1], quantity=1, reference="R-1", status="paid")
    models = [Product, Customer, Order]
    fields = {
        m: [f.attname for f in m._meta.concrete_fields if f.name not in ("created_at", "updated_at")]
        for m in models
    }
    before = {m: list(m.objects.order_by("pk").values_list(*fields[m])) for m in models}
    for model in models:
        path = tmp_path / f"{model.__name__}.{fmt}"
        assert call("dataflow_export", model._meta.label, "--output", path)[0] == 0
    for model in reversed(models):
        model.objects.all().delete()
    for model in models:
        code, _, message = call("dataflow_import", model._meta.label, tmp_path / f"{model.__name__}.{fmt}")
        assert code == 0, message
    after = {m: list(m.objects.order_by("pk").values_list(*fields[m])) for m in models}
    assert after == before
    assert Product.objects.get(sku="L-1").price == Decimal("19.99")
    assert Customer.objects.get(name="Ada").metadata == {"tags": ["a", 1], "n": None}
