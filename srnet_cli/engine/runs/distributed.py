"""Several processes (`torchrun`, `accelerate launch`): who writes, how a global batch is shared, how results and
masks are compared across ranks. With one process every helper is a no-op."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator


def rank_world(accelerator: Accelerator) -> tuple[int, int]:
    """(rank, number of processes); accelerator stand-ins without these attributes (bench) are one process."""
    return getattr(accelerator, "process_index", 0), getattr(accelerator, "num_processes", 1)


def is_main(accelerator: Accelerator) -> bool:
    return rank_world(accelerator)[0] == 0


def barrier(accelerator: Accelerator) -> None:
    if rank_world(accelerator)[1] > 1:
        accelerator.wait_for_everyone()


def group_rank_world() -> tuple[int, int]:
    """(rank, number of processes) of the torch.distributed group, for code that has no accelerator (prediction);
    (0, 1) when there is no group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    import torch.distributed as dist

    world = group_rank_world()[1]
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def rank_share(indices: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This rank's part of a global batch and the factor that makes DDP's gradient average equal the gradient of
    the global batch mean: each rank's mean loss is weighted by its share (n_r · world / n), so that
    mean_r(weight_r · mean_r) = sum / n even when the batch does not split evenly. A rank left without examples
    (a final batch smaller than the number of processes) runs one example with weight 0, as DDP needs every rank
    in the backward pass."""
    if world == 1:
        return indices, 1.0
    local = indices[rank::world]
    if not local:
        return indices[:1], 0.0
    return local, len(local) * world / len(indices)


def mask_hash(masks: dict[str, torch.Tensor]) -> str:
    """sha256 over the masks' names and bits, in name order: equal on every rank or the ranks diverged."""
    digest = hashlib.sha256()
    for name in sorted(masks):
        digest.update(name.encode())
        digest.update(masks[name].to(torch.bool).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_same_masks(masks: dict[str, torch.Tensor]) -> str:
    """The masks' hash; raises if any rank holds a different mask (a silent divergence would corrupt the run)."""
    value = mask_hash(masks)
    hashes = gather_objects(value)
    if len(set(hashes)) != 1:
        raise RuntimeError(f"ranks hold different masks: {hashes}")
    return value
