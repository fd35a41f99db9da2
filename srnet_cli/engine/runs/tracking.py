"""Experiment tracking through accelerate's trackers (TensorBoard, Weights & Biases, MLflow).

The run's name is its run directory's name; files go inside the run directory (`OUT/logs/<name>` for TensorBoard,
`OUT/mlruns` for MLflow, `OUT/wandb` for W&B, which runs offline unless WANDB_MODE says otherwise, so no run ever
waits on a network). Only the main process logs.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from srnet_cli.dicts import flatten
from srnet_cli.errors import UsageError

KINDS = ("none", "tensorboard", "wandb", "mlflow")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def check_kind(kind: str) -> None:
    """Before anything is written: a known tracker whose package is installed."""
    if kind not in KINDS:
        raise UsageError(f"--log-with {kind!r} is not one of {', '.join(KINDS)}", "e.g. --log-with tensorboard")
    package = PACKAGES.get(kind)
    if package and importlib.util.find_spec(package) is None:
        raise UsageError(f"--log-with {kind} needs the {package} package", f"pip install {package}")


def flat_config(values: dict[str, Any]) -> dict[str, Any]:
    """A nested preset as `section.key` hyperparameters of the types trackers accept (lists as text)."""
    return {
        key: value if isinstance(value, bool | int | float | str) else str(value)
        for key, value in flatten(values).items()
        if value is not None
    }


class Tracker:
    """One run's tracker; a no-op for `none` and on processes other than the main one."""

    def __init__(self, kind: str, out: Path, config: dict[str, Any], main: bool = True) -> None:
        self.backend: Any = None
        if kind == "none" or not main:
            return
        check_kind(kind)
        from accelerate import tracking

        name = out.resolve().name
        if kind == "tensorboard":
            self.backend = tracking.TensorBoardTracker(name, out / "logs", flush_secs=5)
        elif kind == "wandb":
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_DIR", str(out))
            self.backend = tracking.WandBTracker(name, dir=str(out))
        else:
            self.backend = tracking.MLflowTracker(experiment_name=name, logging_dir=str(out / "mlruns"), run_name=name)
        self.backend.start()
        self.backend.store_init_configuration(flat_config(config))

    def log(self, values: dict[str, float], step: int) -> None:
        if self.backend is not None and values:
            self.backend.log(values, step=step)

    def finish(self) -> None:
        if self.backend is not None:
            self.backend.finish()
            self.backend = None
