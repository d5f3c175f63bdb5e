"""Case-sensitive text lookups that mean the same on PostgreSQL and SQLite.

Django's own `contains`/`startswith`/`endswith` use LIKE, which SQLite compares without case, so
these registered lookups use strpos/instr/substr there (and GLOB for `$like`). Their names carry a
`dataflow_` prefix so they never shadow a project's own lookups.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import models
from django.db.models import Lookup, lookups


def like_to_glob(pattern: str) -> str:
    """A SQL LIKE pattern (%, _, backslash escapes) as a case-sensitive SQLite GLOB pattern."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out)


class SQLiteTemplate:
    """Mixin: render a case-sensitive template on SQLite; other backends keep Django's SQL
    (PostgreSQL's LIKE is already case-sensitive and can use a text_pattern_ops index)."""

    sqlite_template = ""
    #: The name it is registered under; lookup_name stays Django's own, which keys Django's
    #: per-backend operator tables.
    registered_as = ""

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        """Render sqlite_template over the raw (unwrapped) operand."""
        lhs, lhs_params = self.process_lhs(compiler, connection)  # type: ignore[attr-defined]
        rhs, rhs_params = Lookup.process_rhs(self, compiler, connection)  # type: ignore[arg-type]
        params: list[Any] = []
        for name in re.findall(r"\{(lhs|rhs)\}", self.sqlite_template):
            params.extend(lhs_params if name == "lhs" else rhs_params)
        return self.sqlite_template.format(lhs=lhs, rhs=rhs), params


class Contains(SQLiteTemplate, lookups.Contains):
    """Case-sensitive substring."""

    registered_as = "dataflow_contains"
    sqlite_template = "instr({lhs}, {rhs}) > 0"


class StartsWith(SQLiteTemplate, lookups.StartsWith):
    """Case-sensitive prefix."""

    registered_as = "dataflow_startswith"
    sqlite_template = "substr({lhs}, 1, length({rhs})) = {rhs}"


class EndsWith(SQLiteTemplate, lookups.EndsWith):
    """Case-sensitive suffix (an empty suffix matches every non-NULL value)."""

    registered_as = "dataflow_endswith"
    sqlite_template = "substr({lhs}, length({lhs}) - length({rhs}) + 1) = {rhs}"


class Like(lookups.Lookup):
    """SQL LIKE with % and _ wildcards (backslash escapes them), case-sensitive."""

    lookup_name = registered_as = "dataflow_like"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        """LIKE; SQLite's LIKE ignores case, so there the pattern becomes a GLOB."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "sqlite":
            rhs_params = tuple(like_to_glob(p) if isinstance(p, str) else p for p in rhs_params)
            return f"{lhs} GLOB {rhs}", (*lhs_params, *rhs_params)
        return f"{lhs} LIKE {rhs}", (*lhs_params, *rhs_params)


class ILike(lookups.Lookup):
    """SQL LIKE with % and _ wildcards, case-insensitive."""

    lookup_name = registered_as = "dataflow_ilike"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        """ILIKE on PostgreSQL, LIKE with PostgreSQL's backslash escape on SQLite."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        params = (*lhs_params, *rhs_params)
        if connection.vendor == "postgresql":
            return f"{lhs} ILIKE {rhs}", params
        if connection.vendor == "sqlite":
            return f"{lhs} LIKE {rhs} ESCAPE '\\'", params
        return f"UPPER({lhs}) LIKE UPPER({rhs})", params


TEXT_LOOKUPS = (Contains, StartsWith, EndsWith, Like, ILike)


def register_text_lookups() -> None:
    """Register the lookups on text fields (idempotent; called from AppConfig.ready)."""
    for field_class in (models.CharField, models.TextField):
        for lookup in TEXT_LOOKUPS:
            field_class.register_lookup(lookup, lookup_name=lookup.registered_as)


# Registered when the translator is first imported, not in AppConfig.ready(): start-up stays lean.
register_text_lookups()
