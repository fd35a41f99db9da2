"""Progress on stderr: a live rich bar on a terminal, plain timestamped lines in a log file or CI.

Progress can nest (an evaluation inside training): each `start` opens a task, `end` closes the innermost one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from srnet_cli.engine.runs.context import describe_info, is_line_due


@dataclass
class _Task:
    description: str
    total: int
    done: int = 0
    task_id: Any = None


class RichReporter:
    def __init__(self, console: Console | None = None, stream: TextIO | None = None) -> None:
        self.console = console or Console(stderr=True, log_path=False)
        self.stream = stream or sys.stderr  # log lines without a terminal: one event per line, never padded
        self.progress: Progress | None = None
        self.tasks: list[_Task] = []

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def start(self, total: int, description: str) -> None:
        task = _Task(description, total)
        if self.live:
            if self.progress is None:
                self.progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=self.console,
                    transient=False,
                )
                self.progress.start()
            task.task_id = self.progress.add_task(description, total=total, info="")
        self.tasks.append(task)

    def advance(self, n: int = 1, **info: Any) -> None:
        if not self.tasks:
            return
        task = self.tasks[-1]
        task.done += n
        text = describe_info(info)
        if self.progress is not None:
            self.progress.update(task.task_id, advance=n, info=text)
        elif is_line_due(task.done, task.total):
            self._line(f"{task.description} {task.done}/{task.total} {text}".rstrip())

    def log(self, message: str) -> None:
        if self.live:
            self.console.log(escape(message))
        else:
            self._line(message)

    def end(self) -> None:
        if not self.tasks:
            return
        task = self.tasks.pop()
        if self.progress is not None:
            if self.tasks:  # an inner task (an evaluation): drop its bar, keep the outer one
                self.progress.remove_task(task.task_id)
            else:
                self.progress.stop()
                self.progress = None

    def _line(self, message: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
        self.stream.flush()
