"""`srnet evaluate`: ID dev splits and OOD sets of a task, with the breakdowns researchers report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from srnet_cli.config.loader import dump_toml
from srnet_cli.config.schema import EvaluatePreset
from srnet_cli.engine.data.readers import check_unique_ids, load_split, read_layout
from srnet_cli.engine.data.tasks import TaskSpec, task_spec
from srnet_cli.engine.debias.teacher_files import write_probs_json
from srnet_cli.engine.evaluation.predict import encode_sets, evaluate_sets, head_labels, write_predictions
from srnet_cli.engine.runs.context import RunContext
from srnet_cli.engine.runs.devices import fit_to_device, make_accelerator, slow_precision_note
from srnet_cli.engine.runs.files import check_file_target, check_out_dir, prepare_out_dir, write_json, write_text_atomic
from srnet_cli.engine.sparse.masks import sparsity_summary
from srnet_cli.engine.training.models import (
    check_encoded_fits,
    check_model_available,
    fit_tokenizer,
    load_classifier,
    load_tokenizer,
    model_labels,
)
from srnet_cli.errors import DataError, ModelError
from srnet_cli.recipes.eval_data import data_report, load_eval_sets
from srnet_cli.recipes.subnetworks import load_mask_input, masked_model


def run(preset: EvaluatePreset, ctx: RunContext, overwrite: bool = False) -> dict[str, Any]:
    started = time.time()
    task = task_spec(preset.task)
    mask_path, mask_file = load_mask_input(preset.mask_file, None)
    custom = Path(preset.file).expanduser() if preset.file else None
    inputs = (_data_dir(preset), preset.model.name_or_path, mask_path, custom)
    if ctx.out_dir is not None:
        check_out_dir(ctx.out_dir, overwrite, inputs)
    probs_path = Path(preset.save_probs).expanduser() if preset.save_probs else None
    if probs_path is not None:
        check_file_target(probs_path, overwrite)
    check_model_available(preset.model.name_or_path)  # a missing path fails before any data is read
    datasets, missing = _datasets(preset, task, custom, ctx)
    model, tokenizer, labels, accelerator = _model(preset, task, mask_path, mask_file, ctx)
    sets = encode_sets(datasets, tokenizer, preset.model.max_length, labels)
    check_encoded_fits(model, [s.encoded for s in sets], preset.model.name_or_path)
    ctx.reporter.log(f"evaluating {preset.model.name_or_path} on {', '.join(s.name for s in sets)}")
    logits: dict = {}  # filled only when the probabilities are written
    with accelerator.autocast():  # a no-op unless --mixed-precision
        metrics, predictions = evaluate_sets(
            model,
            sets,
            labels,
            preset.eval.batch_size,
            accelerator.device,
            task.name,
            keep_logits=logits if probs_path is not None else None,
            progress=ctx.reporter,
        )
    results = {
        "command": "evaluate",
        "task": task.name,
        "model": preset.model.name_or_path,
        "split": preset.split,
        "metrics": metrics,
        "data": data_report(datasets, missing),
        **({"mask": str(mask_path), "sparsity": sparsity_summary(mask_file.masks)} if mask_file else {}),
        "seconds": round(time.time() - started, 1),
    }
    out = prepare_out_dir(ctx.out_dir, overwrite, inputs) if ctx.out_dir is not None else None
    if probs_path is not None:  # after the run directory exists: --overwrite must not delete it again
        probs = logits[sets[0].name].softmax(dim=-1).numpy()
        write_probs_json(
            probs_path, task.name, preset.model.name_or_path, list(labels), [e.id for e in datasets[0].examples], probs
        )
        results["probs_file"] = str(probs_path)
        ctx.reporter.log(f"teacher probabilities of {len(datasets[0].examples)} examples written to {probs_path}")
    if out is not None:
        write_text_atomic(out / "preset.toml", dump_toml(preset))
        if preset.split == "eval":
            results["predictions"] = [str(p) for p in write_predictions(out, sets, predictions)]
        results["out"] = str(out)
        write_json(out / "results.json", results)
    return results


def _data_dir(preset: EvaluatePreset) -> Path | None:
    return Path(preset.data.dir).expanduser() if preset.data.dir else None


def _datasets(preset: EvaluatePreset, task: TaskSpec, custom: Path | None, ctx: RunContext) -> tuple[list, list[str]]:
    """One custom file, the training set (teacher probabilities), or the task's sets (and those missing)."""
    if custom is not None and preset.layout is not None:
        try:
            datasets = [read_layout(custom, preset.layout, preset.data.strict)]
        except DataError as exc:  # the readers' hints speak of --data-dir; this file came from --file
            if "--data-dir" in exc.hint:
                exc.hint = f"check --file: a {preset.layout} file in its upstream format (docs/reference.md)"
            raise
    elif preset.split == "train":
        datasets = [load_split(task.name, "train", _data_dir(preset), preset.data.strict)]
        check_unique_ids(datasets[0])  # teacher probabilities are keyed by example id
    else:
        found = load_eval_sets(
            task, _data_dir(preset), preset.data.strict, ctx.reporter, preset.eval.sets, preset.data.require_ood
        )
        return found.datasets, found.missing
    ctx.reporter.log(datasets[0].summary())
    return datasets, []


def _model(
    preset: EvaluatePreset, task: TaskSpec, mask_path: Path | None, mask_file: Any, ctx: RunContext
) -> tuple[Any, Any, tuple[str, ...], Any]:
    """The model (with its mask), its tokenizer, its classes in the task's names, and the accelerator."""
    accelerator = make_accelerator(ctx.device, preset.mixed_precision)
    if note := slow_precision_note(accelerator.device, preset.mixed_precision):
        ctx.reporter.log(note)
    tokenizer = load_tokenizer(preset.model.name_or_path)
    if mask_file is not None and mask_path is not None:
        model = masked_model(
            preset.model.name_or_path, mask_path, mask_file, task.labels, ctx.reporter, preset.use_mask_weights
        )
    else:
        model = _fine_tuned_classifier(preset.model.name_or_path, task.name)
    model = fit_to_device(model.to(accelerator.device), accelerator.device, preset.mixed_precision)
    fit_tokenizer(tokenizer, model, preset.model.name_or_path)
    return model, tokenizer, head_labels(model_labels(model), task, ctx.reporter), accelerator


def _fine_tuned_classifier(name: str, task: str) -> Any:
    """The model with its trained classification head; a checkpoint without one (a pre-trained model such as
    `minilm`) would be evaluated with a random head, which is refused with what to do instead."""
    model, info = load_classifier(name, output_loading_info=True)
    new_head = sorted(k for k in info.get("missing_keys", ()) if k.startswith(("classifier", "score")))
    if new_head:
        raise ModelError(
            f"{name} has no trained classification head ({new_head[0]} is missing): it is a pre-trained "
            f"model, and evaluating it would score a random head",
            f"fine-tune it first (srnet finetune --task {task} --model {name} --out runs/ce), then pass "
            "--model runs/ce/model; or evaluate a mask searched on it (--mask)",
        )
    return model
