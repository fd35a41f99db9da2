"""The one training loop, and batched prediction. Commands differ only in what they pass in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from srnet_cli.engine.data.batching import Encoded, collate, eval_batches
from srnet_cli.engine.debias.losses import TrainingLoss
from srnet_cli.engine.evaluation.cpu_products import onednn_linears
from srnet_cli.engine.evaluation.first_token import first_token_only
from srnet_cli.engine.runs.context import Reporter
from srnet_cli.engine.runs.distributed import gather_objects, group_rank_world, rank_share, rank_world
from srnet_cli.engine.runs.faults import fault_point
from srnet_cli.engine.sparse.masks import masked_weights_once

if TYPE_CHECKING:
    from accelerate import Accelerator

    from srnet_cli.engine.runs.tracking import Tracker


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """lr x step/warmup during warm-up, then linear decay to 0 at `total` (the BERT schedule)."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights get no weight decay (the BERT recipe).

    The fused kernel is several times faster than the default on CPU for a small model.
    """
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, eps=1e-8, fused=True)


def train_loop(
    model: torch.nn.Module,
    data: Encoded,
    loss_fn: TrainingLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    accelerator: Accelerator,
    stream: Iterator[list[int]],
    max_steps: int,
    eval_every: int,
    evaluate_fn: Callable[[int], None],
    reporter: Reporter,
    max_grad_norm: float | None,
    first_step: int = 0,
    on_step: Callable[[int], None] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_fn: Callable[[int], None] | None = None,
    tracker: Tracker | None = None,
) -> None:
    """Train from `first_step` to `max_steps` (global step numbers) over batches drawn from `stream`.

    After each optimiser step, `on_step(step)` runs (mask recalibration, rewind snapshots), then
    `evaluate_fn(step)` every `eval_every` steps and at `max_steps`; `evaluate_fn` owns checkpoint selection.
    Then `checkpoint_fn(step)` every `checkpoint_every` steps and at `max_steps`: after the evaluation, so a
    resumed run starts with the same best-so-far. With several processes each rank trains on its share of
    every global batch (the same examples per step as one process). A `tracker` gets each step's loss and lr.
    """
    rank, world = rank_world(accelerator)
    reporter.start(max_steps - first_step, "train")
    running = 0.0
    for step in range(first_step + 1, max_steps + 1):
        indices, weight = rank_share(next(stream), rank, world)
        batch = collate(data, indices, accelerator.device)
        labels, bias, teacher = batch.pop("labels"), batch.pop("bias", None), batch.pop("teacher", None)
        model.train()
        outputs = model(**batch, output_hidden_states=True) if loss_fn.wants_hidden else model(**batch)
        loss = loss_fn(outputs, labels, bias, teacher, step)
        accelerator.backward(loss * weight if world > 1 else loss)
        if max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()
        running = 0.9 * running + 0.1 * value if step > first_step + 1 else value
        lr = float(scheduler.get_last_lr()[0])
        reporter.advance(1, loss=running, lr=lr)
        if tracker is not None:
            tracker.log({"train/loss": value, "train/lr": lr}, step)
        if on_step is not None:
            on_step(step)
        fault_point("step")
        if step % eval_every == 0 or step == max_steps:
            evaluate_fn(step)
            fault_point("evaluated")  # metrics and best model written, no checkpoint yet
        if checkpoint_fn is not None and checkpoint_every and (step % checkpoint_every == 0 or step == max_steps):
            checkpoint_fn(step)
    reporter.end()


# Larger evaluation batches are slower on CPUs (their activations leave the cache): length-sorted batches of this
# size evaluate fastest on the small encoders a CPU runs. GPUs keep eval.batch_size.
CPU_EVAL_BATCH = 64


PROGRESS_AFTER_S = 3.0  # an evaluation shows progress once it has run this long: short ones stay quiet


@torch.inference_mode()  # cheaper than no_grad: no version counters or view tracking
def predict_logits(
    model: torch.nn.Module,
    data: Encoded,
    batch_size: int,
    device: torch.device | str,
    progress: Reporter | None = None,
    description: str = "evaluate",
) -> torch.Tensor:
    """Logits for every example, in dataset order (batches are length-sorted, results scattered back). With a
    `progress` reporter, an evaluation that runs longer than a few seconds shows a bar (a line per 10% in a log).

    With several processes each rank predicts every world-th batch and the parts are gathered to every rank;
    each example must come back exactly once (checked), so no metric counts an example twice or misses one."""
    if torch.device(device).type == "cpu":
        batch_size = min(batch_size, CPU_EVAL_BATCH)
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module  # ranks see different batches: no collective calls in the forward pass
    model.eval()
    rank, world = group_rank_world()
    parts = []
    mine = eval_batches(data.lengths, batch_size)[rank::world]
    started, shown = time.monotonic(), False
    # only logits are read: the last layer runs for the token the head reads; masks being learnt multiply their
    # weights once, not per batch; fp32 products via oneDNN where faster
    with (
        first_token_only(model),
        onednn_linears(device) as onednn,
        masked_weights_once(model, None if onednn is None else onednn.hold),
    ):
        for done, indices in enumerate(mine, start=1):
            batch = collate(data, indices, device)
            for key in ("labels", "bias", "teacher"):
                batch.pop(key, None)
            parts.append((indices, model(**batch).logits.float().cpu()))
            fault_point("eval-batch")
            if progress is not None and not shown and time.monotonic() - started > PROGRESS_AFTER_S:
                progress.start(len(mine), description)
                progress.advance(done)
                shown = True
            elif shown:
                progress.advance(1)  # type: ignore[union-attr]
    if shown:
        progress.end()  # type: ignore[union-attr]
    if world > 1:
        parts = [part for rank_parts in gather_objects(parts) for part in rank_parts]
    assert parts, "empty dataset"
    out = torch.empty(len(data), parts[0][1].shape[1])
    seen = torch.zeros(len(data), dtype=torch.long)
    for indices, logits in parts:
        out[indices] = logits
        seen[indices] += 1
    if not bool((seen == 1).all()):
        raise RuntimeError(f"evaluation gathered {int(seen.sum())} predictions for {len(data)} examples")
    return out
