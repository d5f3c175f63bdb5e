"""A one-line progress bar for a terminal, fed by the bulk node's per-chunk reports.

Written by hand (about thirty lines) rather than with tqdm: the bar is one line redrawn with a
carriage return, and a dependency for it would be installed by every project using the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_WIDTH = 30


class ProgressBar:
    """Redraws `[####------]  42%  120,000 rows` at most every `interval` seconds."""

    def __init__(
        self, write: Callable[[str], None], *, total_bytes: int | None = None,
        position: Callable[[], int | None] | None = None, interval: float = 0.2,
    ) -> None:
        self.write = write
        self.total_bytes = total_bytes or None
        self.position = position
        self.interval = interval
        self._last = 0.0
        self.drawn = False

    def __call__(self, node_id: str, done: int, total: int | None = None) -> None:
        """A progress report: rows done so far (the runtime's progress callback signature)."""
        now = time.monotonic()
        if self.drawn and now - self._last < self.interval:
            return
        self._last = now
        self.draw(done)

    def draw(self, done: int, *, complete: bool = False) -> None:
        """Redraw the line for `done` rows (complete: the whole input was read)."""
        text = f"{done:,} rows"
        position = self.position() if self.position is not None and not complete else None
        if self.total_bytes and (complete or position is not None):
            fraction = 1.0 if complete else min(1.0, (position or 0) / self.total_bytes)
            filled = int(fraction * _WIDTH)
            text = f"[{'#' * filled}{'-' * (_WIDTH - filled)}] {fraction:4.0%}  {text}"
        self.write(f"\r{text}")
        self.drawn = True

    def finish(self, done: int) -> None:
        """Draw the final state and end the line (only if anything was drawn)."""
        if self.drawn:
            self.draw(done, complete=True)
            self.write("\n")
