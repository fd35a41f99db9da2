"""The resumable state of a training run in OUT/resume/state (engine.resume): when it is written, and how a
resumed run is put back exactly where it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.runs import resume
from srnet_cli.engine.runs.distributed import barrier, gather_objects, is_main, rank_world
from srnet_cli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn

    from srnet_cli.engine.data.batching import BatchStream


@dataclass
class Checkpointer:
    """Writes and restores OUT/resume/state; `save` is collective (RNG states of all ranks), the main process
    writes."""

    out: Path
    command: str
    accelerator: Accelerator
    stream: BatchStream  # BatchStream

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        meta: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        rngs = gather_objects(resume.rng_state())
        if is_main(self.accelerator):
            metrics = self.out / "metrics.jsonl"
            lines = len(metrics.read_text(encoding="utf-8").splitlines()) if metrics.is_file() else 0
            bare = self.accelerator.unwrap_model(model)
            objects = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "stream": self.stream.state(),
                "rng": rngs,
            }
            info = {"command": self.command, "step": step, "processes": len(rngs), "metrics_lines": lines, **meta}
            resume.write_state(self.out, resume.model_tensors(bare) | (tensors or {}), objects, info)
        barrier(self.accelerator)

    def load(self) -> resume.SavedState | None:
        """The saved state (None before the first checkpoint), checked against this launch."""
        state = resume.read_state(self.out)
        if state is None:
            return None
        world = rank_world(self.accelerator)[1]
        if state.meta["command"] != self.command:
            raise UsageError(
                f"--resume: {self.out} holds a {state.meta['command']} run, not {self.command}",
                f"resume it with srnet {state.meta['command']}",
            )
        if state.meta["processes"] != world:
            raise UsageError(
                f"--resume: the run was saved by {state.meta['processes']} processes, this launch has {world}",
                "resume with the same number of processes",
            )
        return state

    def restore(
        self,
        state: resume.SavedState,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    ) -> None:
        """Weights/scores/masks, optimiser and schedule, data order, then RNG last (nothing may draw after it)."""
        resume.restore_model(self.accelerator.unwrap_model(model), state.tensors)
        if optimizer is not None:
            optimizer.load_state_dict(state.objects["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state.objects["scheduler"])
        self.stream.restore(state.objects["stream"])
        resume.set_rng_state(state.objects["rng"][rank_world(self.accelerator)[0]])


def checkpoint_every(preset: FinetunePreset, eval_every: int) -> int:
    """train.checkpoint_every (0: never), or at every evaluation: the state then holds the best-so-far just
    computed."""
    every = preset.train.checkpoint_every
    return eval_every if every is None else every
