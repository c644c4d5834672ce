"""The driver's progress bar over clips: done, failed and in flight."""

from __future__ import annotations

from typing import Any


class ClipProgress:
    """A rich progress bar (a no-op when disabled). ``update`` takes absolute counts."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self._p: Any = None

    def __enter__(self) -> ClipProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                               TextColumn("[red]{task.fields[failed]} failed[/] · {task.fields[inflight]} in flight"),
                               TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            self._p.__enter__()
            self._task = self._p.add_task(self.description, total=self.total, failed=0, inflight=0)
        return self

    def update(self, done: int, failed: int, inflight: int) -> None:
        """``done`` counts finished clips, failed ones included."""
        if self._p is not None:
            self._p.update(self._task, completed=done, failed=failed, inflight=inflight)

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
