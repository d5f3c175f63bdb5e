"""Every Python example in docs/ runs against the test project, so a broken example fails CI.

Each page's ```python blocks run in order in one namespace (one test per page), on a transactional
database so that on_commit callbacks fire as in a real process. A block that cannot run here (a
settings module, a model of the reader's app, PostgreSQL- or worker-only code) is preceded by
`<!-- no-run: reason -->`, or is fenced as ```python title="settings.py"; it is still compiled, so
its syntax is checked. A marker without a reason, or one not followed by a fence, is an error.
Functions named test_* that a page defines are called afterwards with their fixtures, so the pages
about testing run their own tests.
"""

from __future__ import annotations

import inspect
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from tests.conftest import require_celery_beat

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
NO_RUN = re.compile(r"^\s*<!--\s*no-run\b:?(?P<reason>.*?)-->\s*$")
SETTINGS_TITLE = re.compile(r'title="[^"]*settings[^"]*\.py"')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a docs page."""

    page: str
    line: int  # 1-based line of the block's first code line
    language: str
    info: str
    code: str
    no_run: str | None  # the reason it is not run, None when it runs


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with its no-run reason; malformed markers raise."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    marker: tuple[int, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = FENCE.match(line)
        no_run = NO_RUN.match(line)
        if no_run:
            reason = no_run.group("reason").strip()
            if not reason:
                raise AssertionError(f"{path.name}:{i + 1}: a no-run marker needs a reason")
            marker = (i + 1, reason)
        elif opened:
            indent, fence, info = opened.group("indent"), opened.group("fence"), opened.group("info")
            language = info.strip().split(" ", 1)[0].lower()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            reason = marker[1] if marker else None
            if reason is None and SETTINGS_TITLE.search(info):
                reason = "a settings module"
            found.append(Block(path.name, i - len(body) + 1, language, info, "\n".join(body), reason))
            marker = None
        elif line.strip() and marker is not None:
            raise AssertionError(f"{path.name}:{marker[0]}: a no-run marker must be followed by a fence")
        i += 1
    if marker is not None:
        raise AssertionError(f"{path.name}:{marker[0]}: a no-run marker must be followed by a fence")
    return found


def pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.rglob("*.md"))


def python_blocks(path: Path) -> list[Block]:
    """The page's Python blocks."""
    return [b for b in blocks(path) if b.language in ("python", "py")]


def _runnable(path: Path) -> bool:
    """Whether the page has a block to run (a malformed page counts, so its test reports why)."""
    try:
        return any(b.no_run is None for b in python_blocks(path))
    except AssertionError:
        return True


RUNNABLE = [p for p in pages() if _runnable(p)]


def _name(path: Path) -> str:
    return str(path.relative_to(DOCS))


@pytest.mark.parametrize("path", pages(), ids=_name)
def test_blocks_parse_and_markers_carry_reasons(path: Path) -> None:
    """Markers are well formed and every Python block, run or not, is valid syntax."""
    invalid = []
    for block in python_blocks(path):
        try:
            compile(_padded(block), f"docs/{_name(path)}", "exec")
        except SyntaxError as exc:
            invalid.append(f"docs/{_name(path)}, block at line {block.line}: {exc}")
    assert invalid == [], "\n".join(invalid)


@pytest.mark.parametrize("path", RUNNABLE, ids=_name)
def test_page_examples_run(path: Path, transactional_db: Any, request: pytest.FixtureRequest) -> None:
    """The page's runnable Python blocks run in order in one namespace, without an error; test_*
    functions they define are then called with their pytest fixtures, as pytest would."""
    namespace: dict[str, Any] = {"__name__": f"docs.{path.stem}"}
    runnable = [block for block in python_blocks(path) if block.no_run is None]
    if any("django_celery_beat" in block.code or "DefinitionSchedule" in block.code for block in runnable):
        require_celery_beat()  # schedules: an optional extra (see tests/conftest.py)
    ran = 0
    for block in runnable:
        code = compile(_padded(block), f"docs/{_name(path)}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            # Later blocks build on earlier ones: the first failure is the one to read.
            pytest.fail(f"docs/{_name(path)}, block at line {block.line} failed: {type(exc).__name__}: {exc}")
        ran += 1
    assert ran == len(runnable) > 0
    for name, function in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(function):
            # Each in a transaction rolled back afterwards, as pytest-django's db fixture does.
            with transaction.atomic():
                function(**_fixtures(function, namespace, request, {}))
                transaction.set_rollback(True)


def _fixtures(
    function: Any, namespace: dict[str, Any], request: pytest.FixtureRequest, values: dict[str, Any]
) -> dict[str, Any]:
    """Arguments for a page's test or fixture: the page's own fixtures first, then pytest's."""
    arguments = {}
    for name in inspect.signature(function).parameters:
        if name not in values:
            own = namespace.get(name)
            if hasattr(own, "_fixture_function_marker") or hasattr(own, "_pytestfixturefunction"):
                wrapped = own.__wrapped__
                value = wrapped(**_fixtures(wrapped, namespace, request, values))
                values[name] = next(value) if inspect.isgenerator(value) else value
            else:
                values[name] = request.getfixturevalue(name)
        arguments[name] = values[name]
    return arguments


@pytest.mark.parametrize("path", pages(), ids=_name)
def test_json_and_toml_blocks_parse(path: Path) -> None:
    """JSON and TOML blocks are valid (unless marked no-run)."""
    invalid = []
    for block in blocks(path):
        if block.no_run is not None:
            continue
        where = f"docs/{_name(path)}:{block.line}"
        if block.language == "json":
            try:
                json.loads(block.code)
            except ValueError as exc:
                invalid.append(f"{where}: invalid JSON: {exc}")
        elif block.language == "toml":
            try:
                tomllib.loads(block.code)
            except ValueError as exc:
                invalid.append(f"{where}: invalid TOML: {exc}")
    assert invalid == [], "\n".join(invalid)


def test_markers_are_checked(tmp_path: Path) -> None:
    """A marker needs a reason and a fence after it; a settings.py title is a no-run."""
    page = tmp_path / "page.md"
    page.write_text(
        '<!-- no-run: worker only -->\n```python\nx = 1\n```\n```python title="settings.py"\nY = 2\n```\n'
    )
    assert [(b.line, b.no_run) for b in blocks(page)] == [(3, "worker only"), (6, "a settings module")]
    for text, problem in [
        ("<!-- no-run -->\n```python\nx = 1\n```\n", "needs a reason"),
        ("<!-- no-run: later -->\nSome text.\n```python\nx = 1\n```\n", "followed by a fence"),
        ("Text.\n<!-- no-run: at the end -->\n", "followed by a fence"),
    ]:
        page.write_text(text)
        with pytest.raises(AssertionError, match=problem):
            blocks(page)


def test_examples_are_found() -> None:
    """The extractor finds the pages' blocks (guards against a regex that silently matches none)."""
    assert len(RUNNABLE) >= 12
    assert sum(len(python_blocks(p)) for p in pages()) >= 40


def _padded(block: Block) -> str:
    """The block's code preceded by blank lines, so tracebacks give the Markdown file's lines."""
    return "\n" * (block.line - 1) + block.code
