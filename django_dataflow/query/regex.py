"""Guards for $regex patterns: a length bound, a compile check and the portable subset."""

from __future__ import annotations

import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError

# Python-only syntax PostgreSQL's regular expressions do not understand.
_NOT_PORTABLE = {
    "(?P": "named groups",
    "(?#": "comments",
    "\\Z": "\\Z (use $)",
    "(?(": "conditionals",
}
# \b and \B are word boundaries in Python but a backspace and a backslash in PostgreSQL.
_BOUNDARIES = {sre_constants.AT_BOUNDARY, sre_constants.AT_NON_BOUNDARY}
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_REPEATS.add(getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT))


def _nested_repeat(items: Any, inside: bool = False) -> bool:
    """Whether a repeat (max > 1) sits inside another, like (a+)+, ((\\w*))* or (?:a{2,}b)+: the
    classic shape of catastrophic backtracking in Python's engine (which runs SQLite's REGEXP)."""
    for op, arg in items:
        if op in _REPEATS:
            repeats = arg[1] > 1
            if (repeats and inside) or _nested_repeat(arg[2], inside or repeats):
                return True
        elif op is sre_constants.SUBPATTERN:
            if _nested_repeat(arg[-1], inside):
                return True
        elif op is sre_constants.BRANCH:
            if any(_nested_repeat(branch, inside) for branch in arg[1]):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            if _nested_repeat(arg[1], inside):
                return True
    return False


def _word_boundary(items: Any) -> bool:
    """Whether the parsed pattern uses \\b or \\B outside a character class."""
    for op, arg in items:
        if op is sre_constants.AT and arg in _BOUNDARIES:
            return True
        if op in _REPEATS and _word_boundary(arg[2]):
            return True
        if op is sre_constants.SUBPATTERN and _word_boundary(arg[-1]):
            return True
        if op is sre_constants.BRANCH and any(_word_boundary(b) for b in arg[1]):
            return True
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT) and _word_boundary(arg[1]):
            return True
    return False


def check_pattern(pattern: str, *, where: str) -> None:
    """Refuse a pattern that is too long, does not compile, is not portable or can blow up."""
    limit = conf.max_regex_length()
    if len(pattern) > limit:
        raise WorkflowValidationError(
            f"{where}: the pattern has {len(pattern)} characters, more than "
            f"DATAFLOW['MAX_REGEX_LENGTH'] ({limit})"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise WorkflowValidationError(f"{where}: invalid regular expression: {exc}") from None
    for token, name in _NOT_PORTABLE.items():
        if token in pattern:
            raise WorkflowValidationError(
                f"{where}: {name} are not supported by every database; use the common subset"
            )
    parsed = sre_parser.parse(pattern)
    if _word_boundary(parsed):
        raise WorkflowValidationError(
            f"{where}: \\b and \\B are word boundaries in Python but not in PostgreSQL; "
            "use the common subset"
        )
    if _nested_repeat(parsed):
        raise WorkflowValidationError(
            f"{where}: nested quantifiers like (a+)+ can take exponential time; rewrite the pattern"
        )
