"""What a training run returns and writes to results.json: one typed record, read back validated by `srnet report`,
the demo and the multi-seed summary."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from srnet_cli.engine.evaluation.metrics import Metrics
from srnet_cli.errors import RunDirError
from srnet_cli.parsing import json_loads


class Sparsity(BaseModel):
    """Zeros over every masked matrix (`sparsity`) and over the encoder's only (`encoder_sparsity`)."""

    model_config = ConfigDict(extra="forbid")
    sparsity: float
    encoder_sparsity: float
    masked_weights: int
    zeros: int
    layers: int


class ImpLevel(BaseModel):
    """One evaluated IMP level: its target, the step it ended at, its measured sparsity and metrics."""

    model_config = ConfigDict(extra="forbid")
    level: float
    step: int
    sparsity: float
    encoder_sparsity: float
    masked_weights: int
    zeros: int
    layers: int
    metrics: Metrics


class RunResults(BaseModel):
    """finetune, retrain, mask-train and imp results; fields a command does not produce stay None."""

    model_config = ConfigDict(extra="forbid")
    command: str
    task: str
    loss: str
    model: str
    seed: int
    out: str
    steps: int
    data: dict[str, JsonValue]
    seconds: float | None = None
    # finetune, retrain, mask-train: the selected checkpoint or mask and its numbers on every set
    best_step: int | None = None
    selection: str | None = None
    metrics: Metrics = {}
    # retrain, mask-train: the mask (retrain: measured on the saved weights)
    mask: str | None = None
    mask_method: str | None = None
    sparsity: Sparsity | None = None
    # mask-train
    pretrained: bool | None = None
    target_sparsity: float | None = None
    initial_sparsity: float | None = None
    # imp
    rewind: str | None = None
    interval: int | None = None
    levels: list[ImpLevel] = []

    def json_dict(self) -> dict[str, JsonValue]:
        """The `--json` object and results.json: the fields this command set."""
        return self.model_dump(mode="json", exclude_unset=True)


def read_results(path: Path) -> RunResults:
    """A results.json, validated; a damaged or hand-edited one is a RunDirError naming the file."""
    try:
        return RunResults.model_validate(json_loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError, ValidationError) as exc:
        reason = f"{exc.error_count()} invalid field(s)" if isinstance(exc, ValidationError) else str(exc)
        raise RunDirError(f"{path} cannot be read ({reason})", "run that run again (--overwrite)") from exc
