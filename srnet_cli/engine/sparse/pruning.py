"""Magnitude masks, mask-score initialisation and recalibration, the sparsity schedule, and weight rewinding.

Counts are exact: a matrix of n weights at sparsity s has exactly round(n·s) zeros (top-k by index, so ties in
|W| cannot over-prune, unlike a `kthvalue` threshold).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from srnet_cli.engine.sparse.masks import MaskedLinear, masked_modules

Scope = Literal["layer", "global"]
PHI = 0.01  # the original project's default per-matrix threshold φ; hard init uses scores 0 and 2φ


def n_pruned(numel: int, sparsity: float) -> int:
    return int(round(numel * sparsity))


def _keep_top(values: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask of the `keep` largest entries of a flat tensor."""
    mask = torch.zeros(values.numel(), dtype=torch.bool, device=values.device)
    if keep > 0:
        mask[torch.topk(values, keep, sorted=False).indices] = True
    return mask


def magnitude_masks(
    weights: dict[str, torch.Tensor],
    sparsity: float,
    scope: Scope = "layer",
    current: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Masks keeping the largest |W|. Weights already pruned in `current` stay pruned (IMP prunes the remaining
    weights), so cumulative sparsity is exactly `sparsity` per matrix ("layer") or over all matrices ("global")."""

    def magnitude(name: str) -> torch.Tensor:
        w = weights[name].detach().abs().flatten().float()
        if current is not None:
            w = torch.where(current[name].flatten().to(w.device), w, torch.full_like(w, -1.0))
        return w

    if scope == "layer":
        out = {}
        for name, w in weights.items():
            keep = w.numel() - n_pruned(w.numel(), sparsity)
            out[name] = _keep_top(magnitude(name), keep).reshape(w.shape).cpu()
        return out
    flat = torch.cat([magnitude(name).cpu() for name in weights])
    keep_all = _keep_top(flat, flat.numel() - n_pruned(flat.numel(), sparsity))
    out, start = {}, 0
    for name, w in weights.items():
        out[name] = keep_all[start : start + w.numel()].reshape(w.shape)
        start += w.numel()
    return out


def model_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: m.weight for name, m in masked_modules(model).items()}


def apply_level(model: nn.Module, sparsity: float, scope: Scope = "layer") -> None:
    """IMP's prune: fix every masked module's mask at `sparsity`, pruning the smallest of the remaining weights."""
    modules = masked_modules(model)
    current = {name: m.mask for name, m in modules.items()}
    masks = magnitude_masks(model_weights(model), sparsity, scope, current)
    for name, module in modules.items():
        module.set_mask(masks[name])


def init_scores(model: nn.Module, sparsity: float, method: Literal["hard", "soft"], scope: Scope = "layer") -> None:
    """Switch every masked module to learnable scores whose initial mask is the magnitude mask at `sparsity`.

    hard: scores 0 for the pruned weights and 2φ for the rest, threshold φ (the paper's magnitude init);
    soft: scores |W| and the threshold at the k-th smallest |W| (the paper's init for gradual sparsity).
    """
    modules = masked_modules(model)
    if method == "hard":
        masks = magnitude_masks(model_weights(model), sparsity, scope)
        for name, module in modules.items():
            scores = masks[name].to(torch.float32) * (2 * PHI)
            module.set_scores(scores, PHI)
        return
    for module in modules.values():
        module.set_scores(module.weight.detach().abs().float(), 0.0)
    recalibrate(model, sparsity, scope)


def recalibrate(model: nn.Module, sparsity: float, scope: Scope = "layer") -> None:
    """Set each matrix's threshold to its k-th smallest score (k = round(n·s)), so the mask is the top-(1−s)
    scores again (the original `reset_threshold`). If the k-th score equals the largest one the threshold is
    left alone, as in the original: a tie that large cannot be split by a threshold."""
    modules = [m for m in masked_modules(model).values() if m.scores is not None]
    if scope == "global":
        flat = torch.cat([_flat_scores(m) for m in modules])
        k = n_pruned(flat.numel(), sparsity)
        if k >= 1:
            value = torch.kthvalue(flat, k).values
            for m in modules:
                m.threshold = value.to(m.threshold.device)
        return
    for m in modules:
        scores = _flat_scores(m)
        k = n_pruned(scores.numel(), sparsity)
        if k < 1:
            m.threshold = scores.min().detach() - 1.0
            continue
        value = torch.kthvalue(scores, k).values
        if value < scores.max():
            m.threshold = value


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A deep copy of every parameter (not a view: AdamW updates parameters in place; see original-repo §9.5)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def rewind(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Copy the saved values back into the parameters, then re-zero the pruned weights of fixed masks."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in saved:
                p.copy_(saved[name])
        for m in masked_modules(model).values():
            if isinstance(m, MaskedLinear) and m.scores is None:
                m.weight.mul_(m.mask)


def _flat_scores(module: MaskedLinear) -> torch.Tensor:
    assert module.scores is not None, "only modules in score mode are recalibrated"
    return module.scores.detach().flatten()
