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


_CATEGORY_CHARS = {
    sre_constants.CATEGORY_DIGIT: frozenset("0123456789"),
    sre_constants.CATEGORY_WORD: frozenset(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
    ),
    sre_constants.CATEGORY_SPACE: frozenset(" \t\n\r\f\v"),
}
#: The first characters of a branch could be anything (or nothing: an empty branch).
_ANYTHING = None


def _first_chars(items: Any) -> frozenset[str] | None:
    """The characters a parsed branch can start with; None when that could be any (or none)."""
    if not items:
        return _ANYTHING
    op, arg = items[0]
    if op is sre_constants.LITERAL:
        return frozenset(chr(arg))
    if op is sre_constants.IN:
        chars: set[str] = set()
        for kind, value in arg:
            if kind is sre_constants.LITERAL:
                chars.add(chr(value))
            elif kind is sre_constants.RANGE and value[1] - value[0] < 1000:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            elif kind is sre_constants.CATEGORY and value in _CATEGORY_CHARS:
                chars |= _CATEGORY_CHARS[value]
            else:
                return _ANYTHING  # negated sets, other categories, huge ranges
        return frozenset(chars)
    if op is sre_constants.SUBPATTERN:
        return _first_chars(arg[-1])
    if op in _REPEATS and arg[0] >= 1:
        return _first_chars(arg[2])
    return _ANYTHING


def _overlapping_branches(items: Any, inside: bool = False) -> bool:
    """Whether an alternation inside a repeat has two branches that can start with the same
    character (or an empty branch), like (a|aa)+ or (\\d+-|1)*: backtracking then tries every way
    to split the text, exponential in Python's engine (SQLite's REGEXP)."""
    for op, arg in items:
        if op in _REPEATS:
            if _overlapping_branches(arg[2], inside or arg[1] > 1):
                return True
        elif op is sre_constants.SUBPATTERN:
            if _overlapping_branches(arg[-1], inside):
                return True
        elif op is sre_constants.BRANCH:
            if inside:
                starts = [_first_chars(branch) for branch in arg[1]]
                if any(
                    a is _ANYTHING or b is _ANYTHING or a & b
                    for i, a in enumerate(starts)
                    for b in starts[i + 1 :]
                ):
                    return True
            if any(_overlapping_branches(branch, inside) for branch in arg[1]):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            if _overlapping_branches(arg[1], inside):
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
    if _overlapping_branches(parsed):
        raise WorkflowValidationError(
            f"{where}: a repeated alternation whose branches can start alike, like (a|aa)+, can "
            "take exponential time; rewrite the pattern"
        )
