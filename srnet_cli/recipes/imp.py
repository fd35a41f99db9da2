"""`srnet imp`: iterative magnitude pruning (paper §2; original-repo.md §4), with the original's bugs fixed.

After fine-tuning (`imp.rewind = "none"`): start from a fine-tuned model, prune to `rate` at t = 0 and to the next
level every interval (rate·t_total steps), training with the chosen loss in between and resetting the optimiser at
each prune. A level's result is the model at the end of its interval.
Lottery ticket (`"pretrained"` or a step N): the same, but after each prune the surviving weights return to the
values saved at t = 0 (pre-trained) or at step N; the saved values are copies, so the rewind is real.
"""

from __future__ import annotations

import time
from typing import Any

from srnet_cli.config.schema import ImpPreset
from srnet_cli.engine.context import RunContext
from srnet_cli.engine.distributed import check_same_masks, is_main
from srnet_cli.engine.faults import fault_point
from srnet_cli.engine.rundir import save_model_atomic
from srnet_cli.errors import UsageError
from srnet_cli.recipes import training
from srnet_cli.recipes.common import data_report, set_rows
from srnet_cli.recipes.masks import level_name


def levels(rate: float, final: float) -> list[float]:
    """rate, 2·rate, ... up to `final` (inclusive, within rounding): 0.1 ... 0.9 for the paper's settings."""
    n = int(round(final / rate + 1e-9))
    return [round(rate * k, 6) for k in range(1, n + 1) if rate * k < 1 - 1e-9]


def run(preset: ImpPreset, ctx: RunContext, overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    done = training.finished_run(preset, ctx, resume)
    if done is not None:
        return done
    started = time.time()
    log = ctx.reporter
    schedule = levels(preset.imp.rate, preset.mask.sparsity)
    if not schedule:
        raise UsageError(f"--sparsity {preset.mask.sparsity} is below the first level ({preset.imp.rate})",
                         "pass --sparsity of at least imp.rate (e.g. 0.9)")  # fmt: skip
    # levels are rounded to 6 digits (`levels`): so are the ones to evaluate, and then compare exactly
    wanted = None if preset.imp.evaluate_levels is None else {round(x, 6) for x in preset.imp.evaluate_levels}
    unknown = sorted(wanted - set(schedule)) if wanted else []
    if unknown:
        raise UsageError(f"imp.evaluate_levels {unknown} are not levels of this schedule ({schedule})",
                         "pick levels that are multiples of imp.rate up to --sparsity")  # fmt: skip
    inputs = training.load_inputs(preset, ctx, overwrite, resume=resume)
    plan = training.budget(preset, len(inputs.train.examples), ctx)
    interval = max(1, int(plan.max_steps * preset.imp.rate + 1e-9))
    rewind_mode = preset.imp.rewind
    if rewind_mode.isdigit() and int(rewind_mode) > interval:
        raise UsageError(f"imp.rewind step {rewind_mode} is after the first level's {interval} steps",
                         f"rewind to a step <= {interval}, or use --rewind pretrained")  # fmt: skip
    loaded = training.load_model(preset, inputs, ctx)
    model, tokenizer, accelerator = loaded.model, loaded.tokenizer, loaded.accelerator
    train_enc, eval_sets = training.encode_data(preset, inputs, loaded)

    from srnet_cli.engine.mask_files import MaskFile, save_mask_file
    from srnet_cli.engine.masking import inject_masks, masks_state, sparsity_summary, target_patterns
    from srnet_cli.engine.pruning import apply_level, rewind, snapshot

    names = inject_masks(model, target_patterns(preset.mask.include_pooler, preset.mask.include_classifier))
    out = training.start_run(preset, ctx, overwrite, inputs, accelerator, resume)
    metrics_log = training.open_metrics_log(preset, ctx, out, accelerator)
    main = is_main(accelerator)

    from srnet_cli.engine.batching import BatchStream
    from srnet_cli.engine.evaluation import evaluate_sets
    from srnet_cli.engine.loop import adamw, linear_warmup_decay, train_loop
    from srnet_cli.engine.losses import make_loss

    loss_fn = make_loss(preset.loss.kind, preset.loss.anneal, plan.max_steps)

    task, cfg = inputs.task, preset.train
    stream = BatchStream(train_enc.lengths, cfg.batch_size, cfg.seed)
    # What the per-step callbacks need to see of the current level (they are defined once, outside the loop).
    state: dict[str, Any] = {"saved": snapshot(model) if rewind_mode == "pretrained" else None, "model": model}
    log.log(f"masked {len(names)} linear layers; {len(schedule)} levels ({schedule[0]:.2f} to "
            f"{schedule[-1]:.2f}), {interval} steps each (t_total {plan.max_steps}), loss {preset.loss.kind}, "
            f"rewind {rewind_mode}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    checkpoints = training.Checkpointer(out, preset.command, accelerator, stream)
    start, mid_level = 0, None  # first level to run; a state saved inside that level
    saved = checkpoints.load() if resume else None
    if saved is not None:
        from srnet_cli.engine.resume import unprefixed

        rows = saved.meta["rows"]
        start = saved.meta["level_index"]
        if saved.meta["has_rewind"]:  # a step-N snapshot; the pre-trained one was just taken again
            state["saved"] = unprefixed("rewind.", saved.tensors)
        if saved.meta["step"] == (start + 1) * interval:  # that level was finished: the next one prunes its result
            checkpoints.restore(saved, model, None, None)
            start += 1
        else:
            mid_level = saved

    def on_step(step: int) -> None:
        if rewind_mode.isdigit() and step == int(rewind_mode):
            state["saved"] = snapshot(accelerator.unwrap_model(state["model"]))
            log.log(f"step {step}: weights saved for rewinding")

    def evaluate_fn(step: int) -> None:
        level, sparsity = state["level"], state["sparsity"]
        if main:  # every level's mask is saved, evaluated or not
            save_mask_file(out / "masks" / level_name(level), MaskFile(state["masks"], {}, {
                "source": str(out), "model": preset.model.name_or_path, "labels": list(task.labels),
                "command": "imp", "loss": preset.loss.kind, "rewind": rewind_mode, "level": level,
                "step": step}))  # fmt: skip
            if preset.imp.save_models:
                bare = accelerator.unwrap_model(state["model"])
                save_model_atomic(bare, tokenizer, out / "models" / f"level-{level:.2f}")
        if wanted is not None and level not in wanted:
            log.log(f"level {level:.2f} (sparsity {sparsity['sparsity']:.4f}), step {step}: mask saved, not evaluated")
            return
        metrics, _ = evaluate_sets(state["model"], eval_sets, task.labels, preset.eval.batch_size, accelerator.device,
                                   task.name, progress=log)  # fmt: skip
        rows.append({"level": level, "step": step, **sparsity, "metrics": metrics})
        log.log(f"level {level:.2f}: mask hash {state['hash']} (equal on every process)")
        if not main:
            return
        metrics_log.write({"level": level, "step": step, "sparsity": sparsity["sparsity"], "mask_hash": state["hash"],
                           **training.flat_metrics(metrics)})  # fmt: skip
        log.log(f"level {level:.2f} (sparsity {sparsity['sparsity']:.4f}), step {step}: "
                + ", ".join(f"{s.name} acc {metrics[s.name]['acc']:.4f}" for s in eval_sets))  # fmt: skip

    def checkpoint_fn(step: int) -> None:
        from srnet_cli.engine.resume import prefixed

        keep_rewind = rewind_mode.isdigit() and state["saved"] is not None
        meta = {"level_index": state["k"], "rows": rows, "has_rewind": keep_rewind}
        tensors = prefixed("rewind.", state["saved"]) if keep_rewind else {}
        checkpoints.save(step, state["model"], state["optimizer"], state["scheduler"], meta, tensors)

    for k in range(start, len(schedule)):
        level, resumed = schedule[k], mid_level is not None and k == start
        model = accelerator.unwrap_model(state["model"])
        fault_point("level")
        if not resumed:  # (a resumed level's weights and masks come from its saved state)
            apply_level(model, level, preset.mask.scope)  # prune the smallest of the remaining weights
            if k > 0 and state["saved"] is not None:
                rewind(model, state["saved"])  # surviving weights back to the saved values; pruned ones stay zero
        # A new optimiser per level (Adam moments reset); lr back to its peak, decaying over t_total, no warm-up,
        # as in the original trainer_imp. free_memory drops accelerate's references to the previous level's
        # optimiser, whose moments would otherwise stay alive (two model-sized tensors per level).
        accelerator.free_memory()
        optimizer = adamw(model, cfg.lr, cfg.weight_decay)
        scheduler = linear_warmup_decay(optimizer, 0, plan.max_steps)
        state["model"], optimizer = accelerator.prepare(model, optimizer)
        first = k * interval
        if resumed:
            checkpoints.restore(mid_level, state["model"], optimizer, scheduler)
            first = mid_level.meta["step"]
        masks = masks_state(model)
        state.update(k=k, level=level, masks=masks, sparsity=sparsity_summary(masks), hash=check_same_masks(masks),
                     optimizer=optimizer, scheduler=scheduler)  # fmt: skip
        train_loop(
            state["model"], train_enc, loss_fn, optimizer, scheduler,
            accelerator=accelerator, stream=stream, first_step=first, max_steps=(k + 1) * interval,
            eval_every=interval, evaluate_fn=evaluate_fn, reporter=log, max_grad_norm=cfg.max_grad_norm,
            on_step=on_step, checkpoint_every=training.checkpoint_every(preset, interval), checkpoint_fn=checkpoint_fn,
            tracker=metrics_log.tracker,
        )  # fmt: skip

    results = {
        "command": "imp",
        "task": task.name,
        "loss": preset.loss.kind,
        "model": preset.model.name_or_path,
        "rewind": rewind_mode,
        "seed": cfg.seed,
        "out": str(out),
        "steps": interval * len(schedule),
        "interval": interval,
        "levels": rows,
        "data": {"train_rows": set_rows(inputs.train), **data_report(inputs.eval_datasets, inputs.missing)},
        "seconds": round(time.time() - started, 1),
    }
    metrics_log.finish({}, interval * len(schedule))
    if main:
        training.finish_run(out, results)
    return results
