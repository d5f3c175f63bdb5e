"""Case-sensitive text lookups that mean the same on PostgreSQL and SQLite.

Django's own `contains`/`startswith`/`endswith` use LIKE, which SQLite compares without case, so
these registered lookups use strpos/instr/substr there (and GLOB for `$like`). Their names carry a
`dataflow_` prefix so they never shadow a project's own lookups.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.db import models
from django.db.models import Lookup


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


class TextLookup(Lookup):
    """A lookup whose SQL is a per-vendor template over {lhs} and {rhs}."""

    #: vendor -> template; "default" for every other backend.
    templates: ClassVar[dict[str, str]] = {}

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """Render the vendor's template with the lhs and rhs SQL."""
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        rhs_params = self.adapt(connection.vendor, list(rhs_params))
        template = self.templates.get(connection.vendor, self.templates["default"])
        params: list[Any] = []
        # A template may use {lhs} and {rhs} several times; params follow the placeholders' order.
        for name in _placeholders(template):
            params.extend(lhs_params if name == "lhs" else rhs_params)
        return template.format(lhs=lhs, rhs=rhs), params

    def adapt(self, vendor: str, params: list[Any]) -> list[Any]:
        """Rewrite the rhs params for a vendor (e.g. LIKE -> GLOB)."""
        return params


def _placeholders(template: str) -> list[str]:
    return re.findall(r"\{(lhs|rhs)\}", template)


class Contains(TextLookup):
    """Case-sensitive substring."""

    lookup_name = "dataflow_contains"
    templates = {
        "postgresql": "strpos({lhs}, {rhs}) > 0",
        "sqlite": "instr({lhs}, {rhs}) > 0",
        "default": "{lhs} LIKE '%%' || {rhs} || '%%'",
    }


class StartsWith(TextLookup):
    """Case-sensitive prefix."""

    lookup_name = "dataflow_startswith"
    templates = {
        "postgresql": "starts_with({lhs}, {rhs})",
        "default": "substr({lhs}, 1, length({rhs})) = {rhs}",
    }


class EndsWith(TextLookup):
    """Case-sensitive suffix (an empty suffix matches every non-NULL value)."""

    lookup_name = "dataflow_endswith"
    templates = {
        "postgresql": "right({lhs}, length({rhs})) = {rhs}",
        "default": "substr({lhs}, length({lhs}) - length({rhs}) + 1) = {rhs}",
    }


class Like(TextLookup):
    """SQL LIKE with % and _ wildcards, case-sensitive."""

    lookup_name = "dataflow_like"
    templates = {"sqlite": "{lhs} GLOB {rhs}", "default": "{lhs} LIKE {rhs}"}

    def adapt(self, vendor: str, params: list[Any]) -> list[Any]:
        """SQLite's LIKE ignores case, its GLOB does not."""
        if vendor == "sqlite":
            return [like_to_glob(p) if isinstance(p, str) else p for p in params]
        return params


class ILike(TextLookup):
    """SQL LIKE with % and _ wildcards, case-insensitive."""

    lookup_name = "dataflow_ilike"
    templates = {
        "postgresql": "{lhs} ILIKE {rhs}",
        "sqlite": "{lhs} LIKE {rhs} ESCAPE '\\'",
        "default": "UPPER({lhs}) LIKE UPPER({rhs})",
    }


TEXT_LOOKUPS = (Contains, StartsWith, EndsWith, Like, ILike)


def register_text_lookups() -> None:
    """Register the lookups on text fields (idempotent; called from AppConfig.ready)."""
    for field_class in (models.CharField, models.TextField):
        for lookup in TEXT_LOOKUPS:
            field_class.register_lookup(lookup)


# Registered when the translator is first imported, not in AppConfig.ready(): start-up stays lean.
register_text_lookups()
