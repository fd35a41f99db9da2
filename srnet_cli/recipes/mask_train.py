"""`srnet mask-train`: learn a binary mask over frozen weights (paper §3.3; original-repo.md §3).

One real-valued score per masked weight, m = 1[score > φ] with a straight-through estimator; every
`recalibrate_every` steps each matrix's φ is reset so the mask is its top-(1 − s_t) scores, with s_t fixed or on the
cubic schedule. The best mask on the ID dev metric (after `select_after` of training) is saved at the sparsity it
had when it was selected (the original reset it to the initial sparsity first; original-repo.md §9.6). Parameters
the start checkpoint did not have (the random classifier of a pre-trained model) are saved with the mask.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from srnet_cli.config.schema import MaskTrainPreset
from srnet_cli.engine.context import RunContext
from srnet_cli.engine.distributed import check_same_masks, is_main
from srnet_cli.recipes import training


def run(preset: MaskTrainPreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    done = training.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    log = ctx.reporter
    search, mask_cfg = preset.search, preset.mask
    inputs = training.load_inputs(preset, ctx, overwrite, resume=resume)
    if search.train_with:
        data_dir = Path(preset.data.dir).expanduser() if preset.data.dir else None
        inputs.ood_train = training.load_ood_train(inputs.task, search.train_with, search.ood_copies, data_dir,
                                                   preset.data.strict, log)  # fmt: skip
    loaded = training.load_model(preset, inputs, ctx)
    model, accelerator = loaded.model, loaded.accelerator
    train_enc, eval_sets = training.encode_data(preset, inputs, loaded)
    plan = training.budget(preset, len(train_enc), ctx)  # a warm-up longer than the run is refused before writing

    from srnet_cli.engine.mask_files import MaskFile, save_mask_file
    from srnet_cli.engine.masking import apply_masks, inject_masks, masks_state, sparsity_summary, target_patterns
    from srnet_cli.engine.pruning import cubic_sparsity, init_scores, recalibrate

    names = inject_masks(model, target_patterns(mask_cfg.include_pooler, mask_cfg.include_classifier))
    for param in model.parameters():
        param.requires_grad_(False)
    initial = search.initial_sparsity if search.initial_sparsity is not None else mask_cfg.sparsity
    init_scores(model, initial, search.init, mask_cfg.scope)
    stored = set(loaded.new_params)
    if stored and search.select_after > 0:
        log.log(f"warning: {preset.model.name_or_path} has no trained classifier (a pre-trained model), but masks are "
                f"selected only after {search.select_after:.0%} of training; the paper uses search.select_after=0 "
                "here (presets pt-ce-mnli, pt-poe-mnli)")  # fmt: skip
    if search.train_classifier:
        for name, param in model.named_parameters():
            if name.startswith("classifier."):
                param.requires_grad_(True)
                stored.add(name)
    out = training.start_run(preset, ctx, overwrite, inputs, accelerator, resume)
    metrics_log = training.open_metrics_log(preset, ctx, out, accelerator)
    main = is_main(accelerator)

    from srnet_cli.engine.batching import BatchStream
    from srnet_cli.engine.evaluation import evaluate_sets, write_predictions
    from srnet_cli.engine.loop import train_loop
    from srnet_cli.engine.losses import make_loss

    task, cfg = inputs.task, preset.train
    selection_set, during = training.evaluation_sets(preset, eval_sets)
    loss_fn = make_loss(preset.loss.kind, preset.loss.anneal, plan.max_steps)
    model, optimizer, scheduler = training.prepare_optimizer(preset, model, accelerator, plan)
    recal_every = search.recalibrate_every or preset.eval.every
    select_from = math.ceil(search.select_after * plan.max_steps)
    schedule = (f"cubic {initial:.2f} -> {mask_cfg.sparsity:.2f}" if initial != mask_cfg.sparsity
                else f"fixed {mask_cfg.sparsity:.2f}")  # fmt: skip
    log.log(f"mask training on {len(names)} linear layers ({search.init} init, sparsity {schedule}, threshold reset "
            f"every {recal_every} steps); {plan.max_steps} steps, loss {preset.loss.kind}, selecting from step "
            f"{select_from}")  # fmt: skip
    target = {"sparsity": initial}
    best: dict[str, Any] = {"value": -math.inf, "step": None}
    selected: dict[str, Any] = {}  # the best mask's (metrics, predictions): not recomputed at the end
    # what every mask file of this search records of how it was found (`srnet retrain` names its mask by it)
    provenance = {"source": str(out), "model": preset.model.name_or_path, "labels": list(task.labels),
                  "command": "mask-train", "loss": preset.loss.kind, "pretrained": bool(loaded.new_params),
                  "ood_train": bool(search.train_with), "initial_sparsity": initial}  # fmt: skip
    stream = BatchStream(train_enc.lengths, cfg.batch_size, cfg.seed)
    checkpoints = training.Checkpointer(out, preset.command, accelerator, stream)
    saved = checkpoints.load() if resume else None
    if saved is not None:
        from srnet_cli.engine.resume import unprefixed

        checkpoints.restore(saved, model, optimizer, scheduler)
        target["sparsity"] = saved.meta["target_sparsity"]
        best.update(saved.meta["best"])
        if best["step"] is not None:
            best.update(
                masks=unprefixed("best_mask.", saved.tensors), weights=unprefixed("best_weight.", saved.tensors)
            )

    def current_weights() -> dict[str, Any]:
        params = dict(accelerator.unwrap_model(model).named_parameters())
        return {name: params[name].detach().cpu().clone() for name in sorted(stored)}

    def on_step(step: int) -> None:
        if step % recal_every == 0:
            target["sparsity"] = cubic_sparsity(step, plan.max_steps, initial, mask_cfg.sparsity, search.schedule_end)
            recalibrate(accelerator.unwrap_model(model), target["sparsity"], mask_cfg.scope)

    def evaluate_fn(step: int) -> None:
        masks = masks_state(accelerator.unwrap_model(model))
        digest = check_same_masks(masks)  # every process must hold the same mask, at every evaluation point
        if step < select_from:  # a mask from before selection starts can never be chosen: evaluating it is waste
            return
        summary = sparsity_summary(masks)
        metrics, predictions = evaluate_sets(model, during, task.labels, preset.eval.batch_size, accelerator.device,
                                             task.name, progress=log)  # fmt: skip
        value = metrics[selection_set.name][preset.eval.metric]
        line = {"step": step, "epoch": round(step / plan.steps_per_epoch, 3), "sparsity": summary["sparsity"],
                "target_sparsity": round(target["sparsity"], 6), "mask_hash": digest,
                **training.flat_metrics(metrics)}  # fmt: skip
        metrics_log.write(line)
        improved = value > best["value"]
        if improved:
            weights = current_weights()
            best.update(value=value, step=step, masks=masks, weights=weights, sparsity=summary)
            # score-mode forward multiplies by an exact 0/1 mask: the fixed mask below gives the same numbers
            selected["known"] = (metrics, predictions)
        if improved and main:
            save_mask_file(out / "masks" / "best.safetensors", MaskFile(masks, weights, {
                **provenance, "step": step, "target_sparsity": target["sparsity"],
                "selection": f"{selection_set.name}.{preset.eval.metric}", "value": value}))  # fmt: skip
        log.log(f"step {step}: sparsity {summary['sparsity']:.4f}, {selection_set.name} {preset.eval.metric} "
                f"{value:.4f}" + (" (best, mask saved)" if improved else ""))  # fmt: skip

    def checkpoint_fn(step: int) -> None:
        from srnet_cli.engine.resume import prefixed

        kept = {k: best[k] for k in ("value", "step", "sparsity") if k in best}
        tensors = (
            prefixed("best_mask.", best["masks"]) | prefixed("best_weight.", best["weights"]) if "masks" in best else {}
        )
        checkpoints.save(step, model, optimizer, scheduler, {"best": kept, "target_sparsity": target["sparsity"]},
                         tensors)  # fmt: skip

    train_loop(
        model, train_enc, loss_fn, optimizer, scheduler,
        accelerator=accelerator, stream=stream, first_step=saved.meta["step"] if saved else 0,
        max_steps=plan.max_steps, eval_every=preset.eval.every, evaluate_fn=evaluate_fn, reporter=log,
        max_grad_norm=cfg.max_grad_norm, on_step=on_step,
        checkpoint_every=training.checkpoint_every(preset, preset.eval.every), checkpoint_fn=checkpoint_fn,
        tracker=metrics_log.tracker,
    )  # fmt: skip
    bare = accelerator.unwrap_model(model)
    if main:
        save_mask_file(out / "masks" / "last.safetensors", MaskFile(masks_state(bare), current_weights(), {
            **provenance, "step": plan.max_steps, "target_sparsity": target["sparsity"]}))  # fmt: skip

    # Final evaluation: the selected mask, fixed, with the weights it was selected with.
    from srnet_cli.recipes.masks import load_weights_into

    load_weights_into(bare, best["weights"], out / "masks" / "best.safetensors")
    apply_masks(bare, best["masks"])
    metrics, predictions = evaluate_sets(bare, eval_sets, task.labels, preset.eval.batch_size, accelerator.device,
                                         task.name, known=selected.get("known"), progress=log)  # fmt: skip
    if main:
        write_predictions(out, eval_sets, predictions)
    results = training.run_results(preset, inputs, out, plan, best["step"], selection_set, metrics)
    results["data"]["ood_train"] = {d.name: len(d.examples) for d in inputs.ood_train}
    results["pretrained"] = bool(loaded.new_params)  # the searched model had no trained head (paradigm c)
    results |= {"target_sparsity": mask_cfg.sparsity, "initial_sparsity": initial, "sparsity": best["sparsity"]}
    results |= {"mask": str(out / "masks" / "best.safetensors"), "seconds": round(time.time() - started, 1)}
    metrics_log.finish(results, plan.max_steps)
    if main:
        training.finish_run(out, results)
    return results
