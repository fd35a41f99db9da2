"""`srnet finetune` and `srnet retrain`: fine-tuning with CE or a debiasing loss, best checkpoint by the ID dev
metric. `retrain` is the same recipe with a fixed mask: pruned weights stay exactly zero through training and in
the saved model (paradigm (b) of the paper: a subnetwork fine-tuned in isolation)."""

from __future__ import annotations

import math
import time
from typing import Any

from srnet_cli.config.schema import FinetunePreset, RetrainPreset
from srnet_cli.engine.context import RunContext
from srnet_cli.engine.distributed import barrier, is_main
from srnet_cli.engine.rundir import save_model_atomic
from srnet_cli.recipes import training
from srnet_cli.recipes.masks import load_mask_input


def run(preset: FinetunePreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    done = training.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    log = ctx.reporter
    mask_cfg = preset.mask if isinstance(preset, RetrainPreset) else None
    mask_path, mask_file = load_mask_input(mask_cfg.file, mask_cfg.sparsity) if mask_cfg else (None, None)

    inputs = training.load_inputs(preset, ctx, overwrite, extra=(mask_path,), resume=resume)
    loaded = training.load_model(preset, inputs, ctx)
    model, tokenizer, accelerator = loaded.model, loaded.tokenizer, loaded.accelerator
    train_enc, eval_sets = training.encode_data(preset, inputs, loaded)
    plan = training.budget(preset, len(train_enc), ctx)  # a warm-up longer than the run is refused before writing
    masks = None
    if mask_file is not None and mask_cfg is not None:
        from srnet_cli.recipes.masks import inject_mask_file

        masks = inject_mask_file(model, mask_file, keep_classifier=mask_cfg.include_classifier, reporter=log)
    out = training.start_run(preset, ctx, overwrite, inputs, accelerator, resume)
    metrics_log = training.open_metrics_log(preset, ctx, out, accelerator)
    main = is_main(accelerator)
    if masks is not None:
        from srnet_cli.engine.distributed import check_same_masks
        from srnet_cli.engine.mask_files import MaskFile, save_mask_file

        log.log(f"mask hash {check_same_masks(masks)} (equal on every process)")
        if main:
            save_mask_file(out / "masks" / "mask.safetensors", MaskFile(masks, {}, {"source": str(mask_path)}))

    from srnet_cli.engine.batching import BatchStream
    from srnet_cli.engine.evaluation import evaluate_sets, write_predictions
    from srnet_cli.engine.loop import train_loop
    from srnet_cli.engine.losses import make_loss
    from srnet_cli.engine.models import load_classifier

    task, cfg = inputs.task, preset.train
    selection_set, during = training.evaluation_sets(preset, eval_sets)
    loss_fn = make_loss(preset.loss.kind, preset.loss.anneal, plan.max_steps)
    model, optimizer, scheduler = training.prepare_optimizer(preset, model, accelerator, plan)
    epochs = plan.max_steps / plan.steps_per_epoch
    log.log(f"training {plan.max_steps} steps ({epochs:.2f} epochs of {len(train_enc)} examples), "
            f"loss {preset.loss.kind}, warmup {plan.warmup}, device {accelerator.device}")  # fmt: skip
    best: dict[str, Any] = {"value": -math.inf, "step": 0}
    stream = BatchStream(train_enc.lengths, cfg.batch_size, cfg.seed)
    checkpoints = training.Checkpointer(out, preset.command, accelerator, stream)
    saved = checkpoints.load() if resume else None
    if saved is not None:
        checkpoints.restore(saved, model, optimizer, scheduler)
        best.update(saved.meta["best"])

    selected: dict[str, Any] = {}  # the best checkpoint's (metrics, predictions): not recomputed at the end

    def evaluate_fn(step: int) -> None:
        metrics, predictions = evaluate_sets(model, during, task.labels, preset.eval.batch_size, accelerator.device,
                                             task.name, progress=log)  # fmt: skip
        value = metrics[selection_set.name][preset.eval.metric]
        metrics_log.write({"step": step, "epoch": round(step / plan.steps_per_epoch, 3),
                           **training.flat_metrics(metrics)})  # fmt: skip
        improved = value > best["value"]
        if improved:
            best.update(value=value, step=step)
            selected["known"] = (metrics, predictions)
            if main:
                save_model_atomic(accelerator.unwrap_model(model), tokenizer, out / "model")
        log.log(f"step {step}: {selection_set.name} {preset.eval.metric} {value:.4f}"
                + (" (best, saved)" if improved else ""))  # fmt: skip

    def on_step(step: int) -> None:
        if main and cfg.save_every and step % cfg.save_every == 0:
            save_model_atomic(accelerator.unwrap_model(model), tokenizer, out / "checkpoints" / f"step-{step}")

    def checkpoint_fn(step: int) -> None:
        checkpoints.save(step, model, optimizer, scheduler, {"best": best})

    train_loop(
        model, train_enc, loss_fn, optimizer, scheduler,
        accelerator=accelerator, stream=stream, first_step=saved.meta["step"] if saved else 0,
        max_steps=plan.max_steps, eval_every=preset.eval.every, evaluate_fn=evaluate_fn, reporter=log,
        max_grad_norm=cfg.max_grad_norm, on_step=on_step,
        checkpoint_every=training.checkpoint_every(preset, preset.eval.every), checkpoint_fn=checkpoint_fn,
        tracker=metrics_log.tracker,
    )  # fmt: skip

    # Final evaluation of the selected checkpoint on every ID split and OOD set.
    barrier(accelerator)  # the main process has written the best model
    # The selection-time numbers stand for the final model unless it is reloaded in fp32 after autocast training.
    reusable = selected.get("known") if preset.train.mixed_precision == "no" or best["step"] == plan.max_steps else None
    if best["step"] != plan.max_steps:
        model = load_classifier(str(out / "model")).to(accelerator.device)
    metrics, predictions = evaluate_sets(model, eval_sets, task.labels, preset.eval.batch_size, accelerator.device,
                                         task.name, known=reusable, progress=log)  # fmt: skip
    if main:
        write_predictions(out, eval_sets, predictions)
    results = training.run_results(preset, inputs, out, plan, best["step"], selection_set, metrics)
    if masks is not None:
        from srnet_cli.engine.masking import sparsity_summary

        results["mask"] = str(mask_path)
        results["mask_method"] = mask_method(mask_file.meta)
        # Measured on the saved weights, not the mask: proves the pruned weights stayed zero.
        results["sparsity"] = sparsity_summary({k: w != 0 for k, w in _named_weights(model, masks).items()})
    results["seconds"] = round(time.time() - started, 1)
    metrics_log.finish(results, plan.max_steps)
    if main:
        training.finish_run(out, results)
    return results


def mask_method(meta: dict[str, Any]) -> str | None:
    """How a mask was found, from its metadata, named as `srnet report` names that search ("lottery-ticket IMP poe",
    "mask-train ce + OOD data", ...); None for a mask without srnet provenance (the original project's)."""
    from srnet_cli.recipes.report import search_name

    if meta.get("command") not in ("imp", "mask-train"):
        return None
    return search_name(meta["command"], meta.get("loss"), rewind=meta.get("rewind", "none"),
                       ood_data=bool(meta.get("ood_train")), pretrained=bool(meta.get("pretrained")),
                       initial=meta.get("initial_sparsity"), target=meta.get("target_sparsity"),
                       model=str(meta.get("model", "")))  # fmt: skip


def _named_weights(model: Any, masks: dict[str, Any]) -> dict[str, Any]:
    params = dict(model.named_parameters())
    return {name: params[name].detach().cpu() for name in masks}
