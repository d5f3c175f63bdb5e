"""Every hostile input of tests/security/corpus.py: the expected error class, words of its message,
and every table byte-for-byte unchanged (row counts and a checksum of each table)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.security.conftest import database_state, make_user
from tests.security.corpus import CASES, USERS, Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus_seed(seeded: dict[str, Any]) -> dict[str, Any]:
    """The seeded rows plus the corpus's users (created before the snapshot is taken)."""
    users = {codenames: make_user(*codenames, username=f"u{i}") for i, codenames in enumerate(USERS)}
    return {**seeded, "users": users}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(case: Case, corpus_seed: dict[str, Any]) -> None:
    before = database_state()
    if case.error is None:
        case.act(corpus_seed)
    else:
        with pytest.raises(case.error) as info:
            case.act(corpus_seed)
        assert case.match in str(info.value), f"{case.id}: {str(info.value)[:500]}"
    assert database_state() == before, f"{case.id} changed the database"


def test_the_corpus_is_large_and_covers_every_surface_and_node_type() -> None:
    surfaces = Counter(case.surface for case in CASES)
    assert len(CASES) >= 150
    assert set(surfaces) == {"python", "json", "inputs", "user", "command", "definition"}
    operations = {
        "Create",
        "Read",
        "Update",
        "Delete",
        "List",
        "Count",
        "Aggregate",
        "BulkCreate",
        "BulkUpdate",
        "BulkDelete",
        "BulkUpsert",
    }
    covered = {
        op
        for op in operations
        if any(
            f"{op}Node" in repr(case.act.__closure__ or "") or f"-{op.lower()}" in case.id for case in CASES
        )
    }
    assert covered == operations


def test_docs_quote_the_corpus_counts() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    quoted = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            quoted[cells[0]] = int(cells[1])
    by_section = Counter(case.section for case in CASES)
    assert {k: v for k, v in quoted.items() if k in by_section} == dict(by_section)
    assert "**total** | **" + str(len(CASES)) + "**" in text
    surfaces = Counter(case.surface for case in CASES)
    for surface, count in surfaces.items():
        assert any(k.startswith(surface) and v == count for k, v in quoted.items()), surface
