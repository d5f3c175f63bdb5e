"""manage.py dataflow_import: formats, conversion, upserts, bad rows, mapping, progress, exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from shop.models import Customer, Order, Product, StockLevel
from tests.commands.helpers import TerminalOutput, call, write

pytestmark = pytest.mark.django_db

PRODUCTS_CSV = (
    "name,sku,price,stock,active,description\n"
    "Lamp,L-1,19.99,5,true,\n"
    'Desk,D-1,120,2,false,"oak, with a drawer"\n'
    'Chair,C-1,45.50,0,yes,"two\nlines"\n'
)


def test_csv_values_are_converted_by_the_model_fields(tmp_path: Path) -> None:
    code, out, _ = call("dataflow_import", "shop.Product", write(tmp_path / "p.csv", PRODUCTS_CSV))
    assert code == 0
    assert "3 created" in out
    rows = {p.sku: p for p in Product.objects.all()}
    assert rows["L-1"].price == Decimal("19.99")
    assert rows["L-1"].stock == 5 and rows["L-1"].active is True
    assert rows["L-1"].description is None  # an empty cell of a nullable field is NULL
    assert rows["D-1"].active is False and rows["D-1"].description == "oak, with a drawer"
    assert rows["C-1"].description == "two\nlines"


def test_csv_json_cells_defaults_and_foreign_keys(tmp_path: Path, product: Product) -> None:
    customers = write(
        tmp_path / "c.csv",
        'name,email,metadata,tier\nAda,ada@example.com,"{""tier"": [1, 2]}",\nBob,bob@example.com,,gold\n',
    )
    assert call("dataflow_import", "shop.Customer", customers)[0] == 0
    ada, bob = Customer.objects.order_by("name")
    assert ada.metadata == {"tier": [1, 2]} and ada.tier == "standard"  # empty cell: the default
    assert bob.metadata == {} and bob.tier == "gold"
    orders = write(
        tmp_path / "o.csv",
        f"product_id,customer,quantity,placed_at\n{product.pk},{ada.pk},3,2026-01-02T03:04:05+00:00\n",
    )
    assert call("dataflow_import", "shop.Order", orders)[0] == 0
    order = Order.objects.get()
    assert (order.product_id, order.customer_id, order.quantity) == (product.pk, ada.pk, 3)
    assert order.placed_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_formats(tmp_path: Path, fmt: str) -> None:
    rows = [
        {"name": "Lamp", "sku": "L-1", "price": 19.99, "stock": 5},
        {"name": "Desk", "sku": "D-1", "price": "120.50", "active": False, "description": None},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n" if fmt == "jsonl" else json.dumps(rows, indent=2)
    code, out, _ = call("dataflow_import", "shop.Product", write(tmp_path / f"p.{fmt}", text))
    assert code == 0, out
    assert {p.sku: p.price for p in Product.objects.all()} == {
        "L-1": Decimal("19.99"),
        "D-1": Decimal("120.50"),
    }
    assert Product.objects.get(sku="D-1").active is False


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", '{"name": "Lamp", "sku": "L-1", "price": 1}\n')
    assert call("dataflow_import", "shop.Product", path)[0] == 2
    assert call("dataflow_import", "shop.Product", path, "--format", "jsonl")[0] == 0
    assert Product.objects.count() == 1


def test_upsert_counts_are_exact(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "name,sku,price\nA,A-1,1\nB,B-1,2\n")
    assert call("dataflow_import", "shop.Product", tmp_path / "a.csv")[0] == 0
    write(tmp_path / "b.csv", "name,sku,price\nA2,A-1,10\nC,C-1,3\nB2,B-1,20\n")
    code, out, _ = call("dataflow_import", "shop.Product", tmp_path / "b.csv", "--upsert-on", "sku")
    assert code == 0
    assert "1 created, 2 updated" in out
    assert dict(Product.objects.values_list("sku", "name")) == {"A-1": "A2", "B-1": "B2", "C-1": "C"}
    assert Product.objects.get(sku="A-1").price == Decimal("10")


def test_upsert_on_a_compound_key(tmp_path: Path, product: Product) -> None:
    path = write(
        tmp_path / "s.csv", f"product,warehouse,quantity\n{product.pk},north,5\n{product.pk},south,1\n"
    )
    assert (
        "2 created, 0 updated"
        in call("dataflow_import", "shop.StockLevel", path, "--upsert-on", "product", "warehouse")[1]
    )
    write(path, f"product,warehouse,quantity\n{product.pk},north,7\n")
    assert (
        "0 created, 1 updated"
        in call("dataflow_import", "Stock", path, "--upsert-on", "product", "warehouse")[1]
    )
    assert StockLevel.objects.get(warehouse="north").quantity == 7


def test_upsert_on_a_field_without_unique_constraint_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "name,sku,price\nA,A-1,1\n")
    code, _, message = call("dataflow_import", "shop.Product", path, "--upsert-on", "name")
    assert code == 2
    assert "conflict_on (name) is not backed by a unique constraint" in message


def test_a_bad_row_aborts_the_import_and_names_line_and_field(tmp_path: Path, unchanged_db: Any) -> None:
    text = "name,sku,price\n" + "".join(f"P{i},S-{i},{i}\n" for i in range(50)) + "Bad,S-x,oops\nZ,Z-1,1\n"
    code, _, message = call(
        "dataflow_import", "shop.Product", write(tmp_path / "p.csv", text), "--batch-size", "7"
    )
    assert code == 1
    assert "nothing was written" in message
    assert "line 52: field 'price'" in message and "oops" in message


def test_a_row_the_database_refuses_is_located_by_line(tmp_path: Path, unchanged_db: Any) -> None:
    # A multi-line cell moves every later line: the row index is mapped back to the file's line.
    text = 'name,sku,price,description\nA,A-1,1,"one\ntwo"\nB,B-1,2,\nC,A-1,3,\n'
    code, _, message = call(
        "dataflow_import", "shop.Product", write(tmp_path / "p.csv", text), "--upsert-on", "sku"
    )
    assert code == 1
    assert "lines 2 and 5 have the same conflict key" in message


def test_bad_cell_counts_nulls_and_lengths_are_bad_rows(tmp_path: Path, unchanged_db: Any) -> None:
    cases = {
        "name,sku,price\nA,A-1\n": "line 2: has 2 fields, the header has 3",
        "name,sku,price\nA,A-1,\n": "line 2: field 'price': a value is required (the cell is empty)",
        f"name,sku,price\n{'x' * 201},A-1,1\n": "line 2: field 'name': ensure this value has at most 200",
        "name,sku,price,colour\nA,A-1,1,red\n": "line 2: unknown column 'colour'",
        "name,sku,price,name\nA,A-1,1,B\n": "line 1: the header names column 'name' twice",
    }
    for text, expected in cases.items():
        code, _, message = call("dataflow_import", "shop.Product", write(tmp_path / "p.csv", text))
        assert code == 1
        assert expected in message
    (tmp_path / "latin.csv").write_bytes(b"name,sku,price\nA,A-1,1\nCaf\xe9,C-1,2\n")
    code, _, message = call("dataflow_import", "shop.Product", tmp_path / "latin.csv")
    assert code == 1 and "line 3: not valid utf-8-sig text" in message
    null = write(
        tmp_path / "p.jsonl", '{"name": "A", "sku": "A-1", "price": 1}\n{"name": null, "sku": "B"}\n'
    )
    code, _, message = call("dataflow_import", "shop.Product", null)
    assert code == 1 and "line 2: field 'name': this field cannot be null" in message


def test_skip_bad_rows_writes_the_reject_file_with_lines(tmp_path: Path) -> None:
    text = "name,sku,price\nA,A-1,1\nB,B-1,oops\nC,C-1,3\nD,D-1\nE,E-1,5\n"
    rejects = tmp_path / "rejects.csv"
    code, out, _ = call(
        "dataflow_import",
        "shop.Product",
        write(tmp_path / "p.csv", text),
        "--skip-bad-rows",
        "--reject-file",
        rejects,
    )
    assert code == 0
    assert "3 created" in out and "2 bad row(s)" in out
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A-1", "C-1", "E-1"]
    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rows[0] == ["name", "sku", "price", "_line", "_error"]
    assert rows[1][:4] == ["B", "B-1", "oops", "3"] and "field 'price'" in rows[1][4]
    assert rows[2][:3] == ["D", "D-1", "5"] and "has 2 fields" in rows[2][3]


def test_skip_bad_rows_for_json_lines(tmp_path: Path) -> None:
    text = (
        '{"name": "A", "sku": "A-1", "price": 1}\nnot json\n[1]\n{"name": "B", "sku": "B-1", "price": "x"}\n'
    )
    rejects = tmp_path / "rejects.jsonl"
    code, _, _ = call(
        "dataflow_import",
        "shop.Product",
        write(tmp_path / "p.jsonl", text),
        "--skip-bad-rows",
        "--reject-file",
        rejects,
    )
    assert code == 0
    assert list(Product.objects.values_list("sku", flat=True)) == ["A-1"]
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in refused] == [2, 3, 4]
    assert "not valid JSON" in refused[0]["error"] and refused[0]["row"] == "not json"
    assert refused[2]["row"]["price"] == "x" and "field 'price'" in refused[2]["error"]


def test_json_array_errors_name_the_element(tmp_path: Path, unchanged_db: Any) -> None:
    bad_value = json.dumps(
        [{"name": "A", "sku": "A-1", "price": 1}, {"name": "B", "sku": "B-1", "price": "x"}]
    )
    code, _, message = call("dataflow_import", "shop.Product", write(tmp_path / "p.json", bad_value))
    assert code == 1 and "element 2: field 'price'" in message
    code, _, message = call(
        "dataflow_import", "shop.Product", write(tmp_path / "p.json", '[{"name": "A"}, {"na')
    )
    assert code == 1 and "not valid JSON" in message
    code, _, message = call("dataflow_import", "shop.Product", write(tmp_path / "p.json", '{"name": "A"}'))
    assert code == 1 and "one JSON array" in message


def test_mapping_renames_and_drops_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "title,code,cost,colour\nLamp,L-1,2.5,red\n")
    code, _, message = call(
        "dataflow_import",
        "shop.Product",
        path,
        "--map",
        "title=name",
        "--map",
        "code=sku",
        "--map",
        "cost=price",
        "--map",
        "colour=",
    )
    assert code == 0, message
    assert Product.objects.values_list("name", "sku", "price").get() == ("Lamp", "L-1", Decimal("2.5"))
    code, _, message = call("dataflow_import", "shop.Product", path, "--map", "title=nope")
    assert code == 2 and "--map title=nope: unknown or read-only field 'nope'" in message
    assert call("dataflow_import", "shop.Product", path, "--map", "title")[0] == 2


def test_read_only_columns_of_an_export_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "name,sku,price,created_at\nLamp,L-1,1,2020-01-01T00:00:00Z\n")
    code, out, _ = call("dataflow_import", "shop.Product", path)
    assert code == 0 and "Read-only columns ignored: created_at" in out
    assert Product.objects.get().created_at.year > 2020


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["shop.Nope", "{csv}"], "'shop.Nope' is not a model registered"),
        (["auth.Group", "{csv}"], "'auth.Group' is not a model registered"),
        (["shop.Product", "{missing}"], "cannot read"),
        (["shop.Product", "{csv}", "--skip-bad-rows"], "--skip-bad-rows and --reject-file go together"),
        (["shop.Product", "-"], "reading standard input needs --format"),
        (["shop.Product", "{csv}", "--user", "nobody"], "--user 'nobody': no such user"),
        (["shop.Product", "{csv}", "--tenant", "acme"], "django-tenants is not installed"),
        (["shop.Product", "{csv}", "--wait"], "--wait goes with --async"),
        (["shop.Product", "{csv}", "--async", "--timeout", "5"], "--timeout goes with --async --wait"),
        (["shop.Product", "-", "--format", "csv", "--async"], "--async cannot read standard input"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, unchanged_db: Any, args: list[str], expected: str
) -> None:
    csv_path = write(tmp_path / "p.csv", "name,sku,price\nA,A-1,1\n")
    args = [a.format(csv=csv_path, missing=tmp_path / "missing.csv") for a in args]
    code, _, message = call("dataflow_import", *args)
    assert code == 2
    assert expected in message


def test_permissions_of_the_given_user(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "name,sku,price\nA,A-1,1\n")
    user = User.objects.create_user("clerk")
    code, _, message = call("dataflow_import", "shop.Product", path, "--user", "clerk")
    assert code == 1 and "permission denied" in message and "shop.add_product" in message
    assert not Product.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="add_product"))
    assert call("dataflow_import", "shop.Product", path, "--user", "clerk")[0] == 0
    assert Product.objects.count() == 1


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    text = "name,sku,price\n" + "".join(f"P{i},S-{i},{i}\n" for i in range(30))
    path = write(tmp_path / "p.csv", text)
    terminal = TerminalOutput()
    assert call("dataflow_import", "shop.Product", path, "--batch-size", "10", stdout=terminal)[0] == 0
    assert "\r" in terminal.getvalue() and "30 rows" in terminal.getvalue() and "100%" in terminal.getvalue()
    Product.objects.all().delete()
    code, out, _ = call("dataflow_import", "shop.Product", path, "--batch-size", "10")
    assert code == 0 and "\r" not in out and "rows" not in out


def test_a_failed_import_on_a_terminal_ends_the_bar_and_exits_1(tmp_path: Path, unchanged_db: Any) -> None:
    text = "name,sku,price\n" + "".join(f"P{i},S-{i},{i}\n" for i in range(25)) + "Bad,S-x,oops\n"
    terminal = TerminalOutput()
    code, out, message = call(
        "dataflow_import", "shop.Product", write(tmp_path / "p.csv", text), "--batch-size", "10",
        stdout=terminal,
    )
    assert code == 1 and "import failed, nothing was written: line 27: field 'price'" in message
    assert "\r" in out and out.endswith("\n")  # the bar was drawn, then its line ended before the error
    assert "Imported" not in out


def test_more_rows_than_max_bulk_rows_fail_naming_the_setting(tmp_path: Path, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_BULK_ROWS": 3}
    path = write(tmp_path / "p.csv", "name,sku,price\n" + "".join(f"P{i},S-{i},{i}\n" for i in range(4)))
    code, _, message = call("dataflow_import", "shop.Product", path)
    assert code == 1 and "MAX_BULK_ROWS" in message
    assert not Product.objects.exists()


def test_encoding_option(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(b"name,sku,price\nCaf\xe9,C-1,2\n")
    assert call("dataflow_import", "shop.Product", tmp_path / "latin.csv", "--encoding", "latin-1")[0] == 0
    assert Product.objects.get(sku="C-1").name == "Café"


def test_skip_bad_rows_of_a_json_array_names_elements(tmp_path: Path) -> None:
    rows = [{"name": "A", "sku": "A-1", "price": 1}, {"name": "B", "sku": "B-1", "price": "x"}, 7]
    rejects = tmp_path / "rejects.jsonl"
    path = write(tmp_path / "p.json", json.dumps(rows))
    assert call("dataflow_import", "shop.Product", path, "--skip-bad-rows", "--reject-file", rejects)[0] == 0
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["element"], r["row"]) for r in refused] == [(2, rows[1]), (3, 7)]
    assert list(Product.objects.values_list("sku", flat=True)) == ["A-1"]
