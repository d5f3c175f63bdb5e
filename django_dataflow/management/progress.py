"""What a command shows on a terminal while a workflow runs here or while it waits for a submitted run.

Shared by `dataflow_run` and `dataflow_import --async --wait`: the same lines, from the same sources
(a bulk node's progress reports; `RunHandle.wait(on_update=...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_dataflow.models import WorkflowRun
    from django_dataflow.runtime.handle import OnUpdate

#: How a waited-for run's status is shown (the others as they are).
STATUS_TEXT = {"pending": "pending (waiting for a worker)", "running": "running"}


def _plain(text: str) -> str:
    # Progress is news, not an error: without it, stderr's ERROR style would colour it on a terminal.
    return text


class Progress:
    """A one-line progress display on a terminal (nothing when `enabled` is false)."""

    def __init__(self, stream: Any, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.shown = False
        self.status: str | None = None
        self.nodes_shown: set[str] = set()

    def __call__(self, node_id: str, done: int, total: int | None) -> None:
        """RunContext progress callback: node, rows done, rows expected."""
        if not self.enabled:
            return
        if total:
            filled = int(30 * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
        else:
            bar = f"{done} rows"
        self.stream.write(f"\r{node_id}: {bar}", style_func=_plain, ending="")
        self.stream.flush()
        self.shown = True

    @property
    def on_update(self) -> OnUpdate | None:
        """What to give RunHandle.wait(on_update=...): None without a terminal.

        Without a callback, wait() blocks on the result backend instead of polling the row.
        """
        return self.update if self.enabled else None

    def update(self, run: WorkflowRun, progress: dict[str, Any] | None) -> None:
        """RunHandle.wait on_update callback: status changes, finished nodes, a bulk node's rows."""
        if not self.enabled:
            return
        stats = run.node_stats or {}
        # The workflow's node order: node_stats' key order does not survive a jsonb column.
        position = {node.get("id"): i for i, node in enumerate(run.workflow.get("nodes", []))}
        new = sorted(set(stats) - self.nodes_shown, key=lambda n: (position.get(n, len(position)), n))
        for node_id in new:
            self.nodes_shown.add(node_id)
            node = stats[node_id] or {}
            seconds = node.get("seconds")
            timing = f" in {seconds:.2f}s" if isinstance(seconds, (int, float)) else ""
            undone = " (rolled back)" if run.status == "failed" else ""
            self.line(f"{node_id}: done, {node.get('rows', 0)} rows{timing}{undone}")
        if run.status != self.status:
            self.status = run.status
            attempt = f" (attempt {run.attempts})" if run.status == "running" and run.attempts > 1 else ""
            self.line(f"run {run.run_id}: {STATUS_TEXT.get(run.status, run.status)}{attempt}")
        if progress:
            self(str(progress.get("node")), int(progress.get("done") or 0), progress.get("total"))

    def line(self, text: str) -> None:
        """A line of its own, after ending a progress bar drawn before it."""
        self.done()
        self.stream.write(text, style_func=_plain)

    def done(self) -> None:
        """End the progress line."""
        if self.shown:
            self.stream.write("")
            self.shown = False
