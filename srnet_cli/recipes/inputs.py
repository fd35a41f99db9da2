"""A training run's inputs, read and checked before anything is written: data, bias and teacher files, the model,
and the tokenised data the model must be able to embed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.data.batching import encode
from srnet_cli.engine.data.readers import Dataset, Example, check_unique_ids, keep_listed_ids, load_split
from srnet_cli.engine.data.tasks import TaskSpec, label_set, task_spec
from srnet_cli.engine.debias.bias_files import load_bias
from srnet_cli.engine.debias.losses import GATED, NEEDS_BIAS, NEEDS_TEACHER, attach_gate
from srnet_cli.engine.debias.teacher_files import load_teacher
from srnet_cli.engine.evaluation.predict import EvalSet, encode_sets
from srnet_cli.engine.runs.context import Reporter, RunContext
from srnet_cli.engine.runs.devices import fit_to_device, make_accelerator, seed_everything, slow_precision_note
from srnet_cli.engine.runs.files import check_out_dir
from srnet_cli.engine.training.models import (
    check_encoded_fits,
    check_model_available,
    fit_tokenizer,
    load_for_task,
    load_tokenizer,
)
from srnet_cli.errors import DataError
from srnet_cli.recipes.eval_data import load_eval_sets
from srnet_cli.recipes.rundirs import check_resume_dir

if TYPE_CHECKING:
    import numpy as np
    from accelerate import Accelerator
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from srnet_cli.engine.data.batching import Encoded


@dataclass
class Inputs:
    task: TaskSpec
    train: Dataset
    eval_datasets: list[Dataset]
    bias: np.ndarray | None  # log-probs aligned with train.examples
    teacher: np.ndarray | None  # conf-reg: teacher probabilities aligned with train.examples
    paths: tuple[Path | str | None, ...]  # files this run reads: --overwrite must never delete them
    ood_train: list[Dataset] = field(default_factory=list)  # OOD training data added (upper-bound study)
    missing: list[str] = field(default_factory=list)  # OOD sets not found (listed as missing in the results)


def data_dir_of(preset: FinetunePreset) -> Path | None:
    return Path(preset.data.dir).expanduser() if preset.data.dir else None


def load_inputs(
    preset: FinetunePreset,
    ctx: RunContext,
    overwrite: bool,
    extra: tuple[Path | str | None, ...] = (),
    resume: bool = False,
) -> Inputs:
    """Everything cheap: output dir, data, bias alignment, model availability. No model is loaded yet."""
    task = task_spec(preset.task)
    data_dir = data_dir_of(preset)
    paths = (data_dir, preset.loss.bias, preset.loss.teacher, preset.model.name_or_path, preset.data.train_ids, *extra)
    assert ctx.out_dir is not None
    if resume:
        check_resume_dir(ctx.out_dir, preset)
    else:
        check_out_dir(ctx.out_dir, overwrite, paths)
    train = load_split(task.name, "train", data_dir, preset.data.strict)
    if preset.data.train_limit:
        train.examples = train.examples[: preset.data.train_limit]
    if preset.data.train_ids:
        keep_listed_ids(train, Path(preset.data.train_ids).expanduser())
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    check_unique_ids(train)
    ctx.reporter.log(train.summary())
    found = load_eval_sets(
        task,
        data_dir,
        preset.data.strict,
        ctx.reporter,
        preset.eval.sets,
        preset.data.require_ood,
        always=task.id_splits[:1],
    )  # the selection set
    loss, labels = preset.loss, task.labels
    bias = load_bias(Path(loss.bias).expanduser(), task.name, labels, train, loss.allow_pickle) if loss.bias else None
    teacher = load_teacher(Path(loss.teacher).expanduser(), task.name, labels, train) if loss.teacher else None
    check_model_available(preset.model.name_or_path)
    return Inputs(task, train, found.datasets, bias, teacher, paths, missing=found.missing)


def load_ood_train(
    task: TaskSpec, names: Sequence[str], copies: int, data_dir: Path | None, strict: bool, reporter: Reporter
) -> list[Dataset]:
    """OOD training sets for the upper-bound study, each repeated `copies` times (ids made unique per copy)."""
    datasets = []
    for name in names:
        for split in task.ood_train[name]:
            data = load_split(task.name, split, data_dir, strict)
            if not data.examples:
                raise DataError(f"{data.source} has no usable rows", "check the file")
            check_unique_ids(data)
            reporter.log(f"{data.summary()}; added to the training data x{copies}")
            data.examples = [
                Example(f"{split}-{c}-{e.id}", e.text_a, e.text_b, e.label, e.row, e.meta)
                for c in range(copies)
                for e in data.examples
            ]
            datasets.append(data)
    return datasets


@dataclass
class Loaded:
    accelerator: Accelerator
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module
    new_params: set[str]  # parameters the checkpoint did not have (a new classifier head)


def load_model(preset: FinetunePreset, inputs: Inputs, ctx: RunContext) -> Loaded:
    seed_everything(preset.train.seed)
    accelerator = make_accelerator(ctx.device, preset.train.mixed_precision)
    tokenizer = load_tokenizer(preset.model.name_or_path)
    model, new_params = load_for_task(preset.model.name_or_path, inputs.task.labels)
    fit_tokenizer(tokenizer, model, preset.model.name_or_path)
    fit_to_device(model, accelerator.device, preset.train.mixed_precision)
    if preset.loss.kind in GATED:
        attach_gate(model)
    if note := slow_precision_note(accelerator.device, preset.train.mixed_precision):
        ctx.reporter.log(note)
    return Loaded(accelerator, tokenizer, model.to(accelerator.device), new_params)


def encode_data(preset: FinetunePreset, inputs: Inputs, loaded: Loaded) -> tuple[Encoded, list[EvalSet]]:
    """Tokenise the training and evaluation data, and check the model can embed it: before `start_run` writes."""
    labels = inputs.task.labels
    index = {n: i for i, n in enumerate(labels)}
    examples = inputs.train.examples + [e for d in inputs.ood_train for e in d.examples]
    tokenizer = loaded.tokenizer
    train_enc = encode(examples, tokenizer, preset.model.max_length, index)
    if inputs.ood_train:  # coarser OOD labels (HANS non-entailment): multi-hot sets of allowed classes
        sets = torch.zeros(len(examples), len(labels))
        for row, example in enumerate(examples):
            sets[row, [index[name] for name in label_set(inputs.task, example.label)]] = 1
        train_enc.labels = sets
    if inputs.bias is not None and preset.loss.kind in NEEDS_BIAS:
        train_enc.bias = torch.tensor(inputs.bias, dtype=torch.float32)
    if inputs.teacher is not None and preset.loss.kind in NEEDS_TEACHER:
        train_enc.teacher = torch.tensor(inputs.teacher, dtype=torch.float32)
    eval_sets = encode_sets(inputs.eval_datasets, tokenizer, preset.model.max_length, labels)
    check_encoded_fits(loaded.model, [train_enc, *(s.encoded for s in eval_sets)], preset.model.name_or_path)
    return train_enc, eval_sets


def evaluation_sets(preset: FinetunePreset, eval_sets: list[EvalSet]) -> tuple[EvalSet, list[EvalSet]]:
    """The set that selects checkpoints (the first ID split) and the sets evaluated during training."""
    return eval_sets[0], eval_sets if preset.eval.ood_during_training else [eval_sets[0]]
