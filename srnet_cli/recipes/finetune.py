"""`srnet finetune`: full fine-tuning with CE or a debiasing loss; best checkpoint by the ID dev metric."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from srnet_cli.config.loader import dump_toml
from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.bias_files import load_bias
from srnet_cli.engine.context import RunContext
from srnet_cli.engine.models import check_model_available, check_tokenizer_fits
from srnet_cli.engine.readers import load_split
from srnet_cli.engine.rundir import (
    append_jsonl,
    check_out_dir,
    environment,
    prepare_out_dir,
    save_model_atomic,
    write_json,
    write_text_atomic,
)
from srnet_cli.engine.tasks import task_spec
from srnet_cli.errors import DataError
from srnet_cli.recipes.common import load_eval_sets


def run(preset: FinetunePreset, ctx: RunContext, overwrite: bool = False) -> dict[str, Any]:
    started = time.time()
    task = task_spec(preset.task)
    out, log = ctx.out_dir, ctx.reporter
    assert out is not None
    data_dir = Path(preset.data.dir).expanduser() if preset.data.dir else None

    inputs = (data_dir, preset.loss.bias, preset.model.name_or_path)

    # 1. Everything cheap first: output dir, data, bias alignment. No model is loaded before these pass.
    check_out_dir(out, overwrite, inputs)
    train = load_split(task.name, "train", data_dir, preset.data.strict)
    if preset.data.train_limit:
        train.examples = train.examples[: preset.data.train_limit]
    if not train.examples:
        raise DataError(f"{train.source} has no usable training rows", "check the file and its labels")
    log.log(train.summary())
    eval_sets_data = load_eval_sets(task, data_dir, preset.data.strict, log)
    bias = load_bias(Path(preset.loss.bias).expanduser(), task.name, task.labels, train) if preset.loss.bias else None
    check_model_available(preset.model.name_or_path)

    # 2. The model, then the run directory (so a model that fails to load leaves nothing behind).
    import torch

    from srnet_cli.engine.batching import encode
    from srnet_cli.engine.devices import make_accelerator, seed_everything
    from srnet_cli.engine.evaluation import encode_sets, evaluate_sets, write_predictions
    from srnet_cli.engine.loop import adamw, linear_warmup_decay, train_loop
    from srnet_cli.engine.losses import LOSSES
    from srnet_cli.engine.models import load_classifier, load_tokenizer

    seed_everything(preset.train.seed)
    accelerator = make_accelerator(ctx.device)
    tokenizer = load_tokenizer(preset.model.name_or_path)
    model = load_classifier(preset.model.name_or_path, task.labels)
    check_tokenizer_fits(tokenizer, model, preset.model.name_or_path)
    prepare_out_dir(out, overwrite, inputs)
    write_text_atomic(out / "preset.toml", dump_toml(preset))
    write_json(out / "env.json", environment(ctx.device, preset.train.seed))

    label_index = {name: i for i, name in enumerate(task.labels)}
    train_enc = encode(train.examples, tokenizer, preset.model.max_length, label_index)
    if bias is not None:
        train_enc.bias = torch.tensor(bias, dtype=torch.float32)
    eval_sets = encode_sets(eval_sets_data, tokenizer, preset.model.max_length, task.labels)
    selection_set = eval_sets[0]
    during = eval_sets if preset.eval.ood_during_training else [selection_set]

    cfg = preset.train
    steps_per_epoch = math.ceil(len(train_enc) / cfg.batch_size)
    max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round((cfg.warmup_ratio or 0.0) * max_steps)
    optimizer = adamw(model, cfg.lr, cfg.weight_decay)
    scheduler = linear_warmup_decay(optimizer, warmup, max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    log.log(f"training {max_steps} steps ({max_steps / steps_per_epoch:.2f} epochs of {len(train_enc)} examples), "
            f"loss {preset.loss.kind}, warmup {warmup}, device {accelerator.device}")  # fmt: skip

    if warmup >= max_steps:
        log.log(f"warning: warm-up ({warmup} steps) is not shorter than training ({max_steps} steps); "
                "set train.warmup_steps or train.warmup_ratio")  # fmt: skip
    best: dict[str, Any] = {"value": -math.inf, "step": 0}

    def evaluate_fn(step: int) -> dict[str, Any]:
        metrics, _ = evaluate_sets(model, during, task.labels, preset.eval.batch_size, accelerator.device)
        value = metrics[selection_set.name][preset.eval.metric]
        record = {"step": step, "epoch": round(step / steps_per_epoch, 3), **_flat(metrics)}
        append_jsonl(out / "metrics.jsonl", record)
        improved = value > best["value"]
        if improved:
            best.update(value=value, step=step)
            save_model_atomic(accelerator.unwrap_model(model), tokenizer, out / "model")
        log.log(
            f"step {step}: {selection_set.name} {preset.eval.metric} {value:.4f}"
            + (" (best, saved)" if improved else "")
        )
        return record

    train_loop(
        model, train_enc, LOSSES[preset.loss.kind], optimizer, scheduler,
        accelerator=accelerator, batch_size=cfg.batch_size, max_steps=max_steps, eval_every=preset.eval.every,
        evaluate_fn=evaluate_fn, reporter=log, seed=cfg.seed, max_grad_norm=cfg.max_grad_norm,
    )  # fmt: skip

    # 3. Final evaluation of the selected checkpoint on every ID split and OOD set.
    if best["step"] != max_steps:
        model = load_classifier(str(out / "model")).to(accelerator.device)
    metrics, predictions = evaluate_sets(model, eval_sets, task.labels, preset.eval.batch_size, accelerator.device)
    write_predictions(out, eval_sets, predictions)
    results = {
        "command": "finetune",
        "task": task.name,
        "loss": preset.loss.kind,
        "model": preset.model.name_or_path,
        "seed": cfg.seed,
        "out": str(out),
        "steps": max_steps,
        "best_step": best["step"],
        "selection": f"{selection_set.name}.{preset.eval.metric}",
        "metrics": metrics,
        "data": {"train": len(train.examples), "train_malformed": len(train.malformed)},
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "results.json", results)
    return results


def _flat(metrics: dict[str, Any]) -> dict[str, float]:
    """`{"hans": {"acc": .5}}` -> `{"hans.acc": .5}` (numbers only), for one metrics.jsonl line."""
    flat = {}
    for name, values in metrics.items():
        for key, value in values.items():
            if isinstance(value, int | float):
                flat[f"{name}.{key}"] = value
    return flat
