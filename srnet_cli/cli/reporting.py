"""Progress on stderr with rich: a live bar on a terminal, plain timestamped lines in a log file or CI."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LINES_PER_RUN = 10  # without a terminal, one progress line per 10% of the steps


class RichReporter:
    def __init__(self, console: Console | None = None) -> None:
        # Without a terminal (CI, `2> log`), rich would wrap at 80 columns; keep one event per line instead.
        self.console = console or Console(stderr=True, log_path=False, width=None if sys.stderr.isatty() else 200)
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.total = 0
        self.done = 0
        self.description = ""

    def start(self, total: int, description: str) -> None:
        self.total, self.done, self.description = total, 0, description
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            )  # fmt: skip
            self.progress.start()
            self.task_id = self.progress.add_task(description, total=total, info="")

    def advance(self, n: int = 1, **info: Any) -> None:
        self.done += n
        text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
        if self.progress is not None:
            self.progress.update(self.task_id, advance=n, info=text)
        elif self.total and (self.done == self.total or self.done % max(1, self.total // LINES_PER_RUN) == 0):
            self.console.log(f"{self.description} {self.done}/{self.total} {text}")

    def log(self, message: str) -> None:
        self.console.log(message)

    def end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
