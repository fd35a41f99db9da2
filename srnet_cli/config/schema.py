"""Preset schema: one pydantic section model per concern, one preset model per command.

Every model forbids unknown keys, so a typo in a preset is an error, not a silently ignored setting
(the original project's HfArgumentParser dropped unknown flags; see original-repo.md §9 item 18).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaskName = Literal["mnli"]
LossKind = Literal["ce", "poe"]
LOSSES_NEEDING_BIAS = ("poe",)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelCfg(Section):
    name_or_path: str = Field("bert-base-uncased", min_length=1, description="HF hub name, local path, or `minilm`")
    max_length: int = Field(128, ge=8, le=512, description="longest tokenised pair; longer pairs are truncated")


class DataCfg(Section):
    dir: str | None = Field(None, description="data root holding MNLI/...; unset: the datasets hub (online only)")
    strict: bool = Field(False, description="a malformed row is an error instead of being counted and skipped")
    train_limit: int | None = Field(None, ge=1, description="use only the first N training examples")


class LossCfg(Section):
    kind: LossKind = "ce"
    bias: str | None = Field(None, description="bias-model log-probs: srnet .json or the original .npy")

    @model_validator(mode="after")
    def _bias_when_needed(self) -> LossCfg:
        if self.kind in LOSSES_NEEDING_BIAS and not self.bias:
            raise ValueError(f"loss {self.kind!r} needs a bias file: pass --bias PATH or set loss.bias")
        return self


class TrainCfg(Section):
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    lr: float = Field(5e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping by global norm; 0 disables it")
    seed: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainCfg:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        return self


class EvalCfg(Section):
    every: int = Field(1000, ge=1, description="evaluate on the ID dev set every N steps (and at the end)")
    batch_size: int = Field(128, ge=1)
    metric: Literal["acc"] = Field("acc", description="ID dev metric that selects the best checkpoint")
    ood_during_training: bool = Field(False, description="also evaluate OOD sets at every evaluation")


class FinetunePreset(Section):
    command: Literal["finetune"] = "finetune"
    description: str = ""
    task: TaskName = "mnli"
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    loss: LossCfg = LossCfg()
    train: TrainCfg = TrainCfg()
    eval: EvalCfg = EvalCfg()


class EvaluatePreset(Section):
    command: Literal["evaluate"] = "evaluate"
    description: str = ""
    task: TaskName = "mnli"
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    eval: EvalCfg = EvalCfg()


PRESETS: dict[str, type[Section]] = {"finetune": FinetunePreset, "evaluate": EvaluatePreset}
