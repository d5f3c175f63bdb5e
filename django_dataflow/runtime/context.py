"""What a node sees of the run it belongs to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ProgressCallback = Callable[[str, int, int | None], None]


@dataclass
class RunContext:
    """The run's id, database, tenant, user and progress sink, shared by every node."""

    run_id: str
    using: str = "default"
    tenant: str | None = None
    user: Any = None
    progress: ProgressCallback | None = None
    node_id: str = ""
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def report(self, done: int, total: int | None = None) -> None:
        """Report progress of the current node (bulk nodes call this once per chunk)."""
        if self.progress is not None:
            self.progress(self.node_id, done, total)
