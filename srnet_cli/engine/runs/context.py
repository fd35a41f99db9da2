"""What cuts across commands: where a run writes, the device, the seed, and how progress is reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Reporter(Protocol):
    """Progress sink. The CLI draws it with rich; tests record it; the engine never imports either."""

    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int = 1, **info: Any) -> None: ...
    def log(self, message: str) -> None: ...
    def end(self) -> None: ...


LINES_PER_RUN = 10  # without a live bar, one progress line per 10% of a task


def is_line_due(done: int, total: int) -> bool:
    """Whether a line-based reporter prints a progress line at step `done` of `total`: every 10%, and the last."""
    return bool(total) and (done == total or done % max(1, total // LINES_PER_RUN) == 0)


def describe_info(info: dict[str, Any]) -> str:
    """A progress event's values as `loss 0.6931 lr 5e-05`: what every reporter prints after the step count."""
    return " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())


class NullReporter:
    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1, **info: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every event; used by tests to assert on what a recipe reported."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def start(self, total: int, description: str) -> None:
        self.events.append(("start", (total, description)))

    def advance(self, n: int = 1, **info: Any) -> None:
        self.events.append(("advance", info))

    def log(self, message: str) -> None:
        self.events.append(("log", message))

    def end(self) -> None:
        self.events.append(("end", None))

    def logs(self) -> list[str]:
        return [m for kind, m in self.events if kind == "log"]


@dataclass(frozen=True)
class RunContext:
    out_dir: Path | None
    device: str = "auto"
    reporter: Reporter = field(default_factory=NullReporter)
    log_with: str = "none"  # experiment tracker (engine.tracking): none | tensorboard | wandb | mlflow
