"""Guards for $regex patterns: a length bound, a compile check and the portable subset."""

from __future__ import annotations

import re

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError

# Python-only syntax PostgreSQL's regular expressions do not understand.
_NOT_PORTABLE = {
    "(?P": "named groups",
    "(?#": "comments",
    "\\Z": "\\Z (use $)",
    "(?(": "conditionals",
}
# A quantified group that itself holds a quantifier, like (a+)+ or (\w*)*: the classic shape of
# catastrophic backtracking in Python's engine (which runs SQLite's REGEXP).
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")


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
    if _NESTED_QUANTIFIER.search(pattern):
        raise WorkflowValidationError(
            f"{where}: nested quantifiers like (a+)+ can take exponential time; rewrite the pattern"
        )
