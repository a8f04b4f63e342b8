"""A live progress line for every solve longer than a second, local or remote (rich, on stderr).

It appears only on a terminal and only once a solve has run for ``delay`` seconds; it shows the
elapsed time, the best plan found so far, the proven bound and the gap, and is replaced by one
final line when the solve ends. Scripts (no terminal) get nothing on stderr but their data on
stdout.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from lepton_alloc.models.status import Progress


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


class SolveProgress:
    """Context manager; call it with each :class:`Progress` (a local solve's callback or a watch)."""

    def __init__(self, label: str, *, delay: float = 1.0, enabled: bool | None = None):
        self.label, self.delay = label, delay
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.last: Progress | None = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SolveProgress:
        return self

    def __call__(self, progress: Progress) -> None:
        self.last = progress
        if not self.enabled or time.monotonic() - self.started < self.delay:
            return
        if self._progress is None:
            from rich.console import Console
            from rich.progress import Progress as Bar
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Bar(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[detail]}"), console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None, detail="")
        gap = "-" if progress.gap is None or progress.gap > 1e9 else f"{100 * progress.gap:.2f} %"
        source = "   (head start)" if progress.head_start else ""
        self._progress.update(self._task, detail=f"best plan {_fmt(progress.objective)}   bound "
                                                 f"{_fmt(progress.best_bound)}   gap {gap}{source}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            elapsed = time.monotonic() - self.started
            print(f"{self.label}: done in {elapsed:.1f} s", file=sys.stderr)
