"""Which input line each row handed to the node came from, in constant memory for usual files.

The node numbers the rows it receives (0, 1, 2...); errors it raises say "row 23". The line of row
i is i + offset, and the offset changes only where a row spans lines, blank lines were skipped or a
bad row went to the reject file: only those points are stored.
"""

from __future__ import annotations

import re
from bisect import bisect_right

_ROWS = re.compile(r"\brows (\d+) and (\d+)\b")
_ROW = re.compile(r"\brow (\d+)\b")


class LineMap:
    """Row index -> line number, stored as the points where their difference changes."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._offsets: list[int] = []

    def add(self, index: int, line: int) -> None:
        """Record that row `index` (counted from 0, in order) starts at `line`."""
        offset = line - index
        if not self._offsets or self._offsets[-1] != offset:
            self._starts.append(index)
            self._offsets.append(offset)

    def line(self, index: int) -> int | None:
        """The line of a row the node saw, or None for an index never added."""
        at = bisect_right(self._starts, index) - 1
        return None if at < 0 else index + self._offsets[at]

    def locate(self, message: str, unit: str) -> str:
        """A node's message with its row indexes replaced by input lines ('row 3' -> 'line 5')."""

        def pair(match: re.Match[str]) -> str:
            first, second = (self.line(int(g)) for g in match.groups())
            if first is None or second is None:
                return match.group(0)
            return f"{unit}s {first} and {second}"

        def one(match: re.Match[str]) -> str:
            found = self.line(int(match.group(1)))
            return match.group(0) if found is None else f"{unit} {found}"

        return _ROW.sub(one, _ROWS.sub(pair, message))
