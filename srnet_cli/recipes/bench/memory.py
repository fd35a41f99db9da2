"""Peak memory of finetune, mask-train and evaluate, each measured in a fresh process (an allocator keeps what it
once held, so phases measured one after another in one process would inherit each other's peaks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


from srnet_cli.recipes.bench.runners import Setup, fresh_model, srnet_predict, srnet_train
from srnet_cli.recipes.bench.workload import realistic_examples


def _reset_peak_rss() -> None:
    """A spawned child starts with its parent's resident pages counted in its peak; Linux resets it on request."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _phase_peak_rss(phase: str, model: str, steps: int, batch: int) -> int:
    """Run one phase in this (fresh) process and return its peak RSS in bytes."""
    from srnet_cli.engine.runs.devices import keep_freed_memory

    keep_freed_memory()  # as the srnet command runs it
    _reset_peak_rss()
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.runs.devices import fit_to_device
    from srnet_cli.engine.training.models import load_tokenizer, resolve_model

    path = resolve_model(model)
    setup = Setup(path, load_tokenizer(path), task_spec("mnli").labels)
    examples = realistic_examples(steps * batch, seed=1)
    if phase == "evaluate":
        srnet_predict(setup, fit_to_device(fresh_model(setup), "cpu", "no"), examples, 128)
    else:
        srnet_train(setup, examples, steps, batch, mask_train=phase == "mask_train")
    return _peak_rss_bytes()


def peak_rss_mb(model: str, steps: int, batch: int) -> dict[str, float]:
    """Peak memory of finetune, mask-train and evaluate, each in its own fresh process: an allocator keeps what it
    once held, so phases measured one after another in one process would inherit each other's peaks."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return {
            phase: pool.apply(_phase_peak_rss, (phase, model, steps, batch)) / 2**20
            for phase in ("finetune", "mask_train", "evaluate")
        }
