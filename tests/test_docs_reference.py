"""The generated reference pages equal freshly rendered ones, and the code they come from is complete."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from django.core.management import load_command_class

from django_dataflow import docs_reference
from django_dataflow.conf import OPTIONS
from django_dataflow.nodes import OPERATION_NAMES
from django_dataflow.nodes.base import OPERATION_ERRORS, RESULT_KEYS, RESULT_SHAPES
from django_dataflow.registry import get_node_class

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"


@pytest.mark.parametrize("name", sorted(docs_reference.PAGES))
def test_committed_page_is_current(name: str) -> None:
    """docs/reference/<name> is what the code renders now; `bash scripts/gen_reference` fixes drift."""
    committed = (REFERENCE / name).read_text()
    assert committed == docs_reference.PAGES[name](), (
        f"docs/reference/{name} is stale: run `bash scripts/gen_reference` and commit the result"
    )


def test_every_operation_has_result_and_errors_documented() -> None:
    """Each operation has a result shape naming each of its result keys, and an errors entry."""
    for op in OPERATION_NAMES:
        assert op in OPERATION_ERRORS
        for key in RESULT_KEYS.get(op, ()):
            assert f'"{key}"' in RESULT_SHAPES[op] or f"`{key}`" in RESULT_SHAPES[op], (op, key)


def test_every_node_param_is_described() -> None:
    """No node param of any operation lacks a description."""
    for op in OPERATION_NAMES:
        node = get_node_class(f"Product{op}Node")
        assert node is not None
        for name, text in node.param_descriptions().items():
            assert text.strip(), f"{node.type_name} param {name!r} has no description"


def test_every_setting_and_command_argument_is_described() -> None:
    """Settings and the commands' own arguments all carry help text."""
    assert all(option.help.strip() for option in OPTIONS.values())
    for name in docs_reference.command_names():
        command = load_command_class("django_dataflow", name)
        assert command.help.strip(), name
        parser = command.create_parser("manage.py", name)
        for action in docs_reference._own_actions(parser):
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


def test_check_mode_reports_stale_pages(tmp_path: Path) -> None:
    """--check exits 1 on a missing page and writes nothing; a plain run writes the pages."""
    assert docs_reference.main(["--check", "--output", str(tmp_path)]) == 1
    assert not list(tmp_path.iterdir())
    assert docs_reference.main(["--output", str(tmp_path)]) == 0
    assert docs_reference.main(["--check", "--output", str(tmp_path)]) == 0


def test_usage_names_each_value_of_a_tuple_metavar() -> None:
    """An option taking several values (metavar a tuple) is shown, not a TypeError."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--between", nargs=2, metavar=("LOW", "HIGH"))
    parser.add_argument("--limit", type=int)
    parser.add_argument("--dry-run", action="store_true")
    between, limit, dry_run = (a for a in parser._actions if a.dest in ("between", "limit", "dry_run"))
    assert docs_reference._option(between) == "[--between LOW HIGH]"
    assert docs_reference._option(limit) == "[--limit LIMIT]"
    assert docs_reference._option(dry_run) == "[--dry-run]"
