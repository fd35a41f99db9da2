"""Magnitude masks, mask-score initialisation and recalibration, the sparsity schedule, and weight rewinding.

Counts are exact: a matrix of n weights at sparsity s has exactly round(n·s) zeros (top-k by index, so ties in
|W| cannot over-prune, unlike a `kthvalue` threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from srnet_cli.engine.sparse.groups import GROUPS_MODULE, GroupIndex, GroupScores, magnitudes, protected, select
from srnet_cli.engine.sparse.masks import MaskedLinear, masked_modules, nm_mask

Scope = Literal["layer", "global"]
PHI = 0.01  # the original project's default per-matrix threshold φ; hard init uses scores 0 and 2φ


@dataclass(frozen=True)
class Pattern:
    """The shape of the masks a search may make: single weights (the paper), N:M blocks, or whole groups (heads,
    neurons) of `groups`."""

    nm: tuple[int, int] | None = None
    groups: GroupIndex | None = None

    @property
    def name(self) -> str:
        if self.nm is not None:
            return f"{self.nm[0]}:{self.nm[1]}"
        if self.groups is not None:
            return "+".join(sorted(set(self.groups.kinds)))
        return "weight"


WEIGHTS = Pattern()


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


def pattern_masks(
    model: nn.Module, sparsity: float, scope: Scope, pattern: Pattern, current: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Magnitude masks in `pattern`: the largest |W| (per weight), the N largest of every M, or the groups of the
    largest root-mean-square weight; what `current` pruned stays pruned."""
    weights = model_weights(model)
    if pattern.nm is not None:
        return {name: nm_mask(w.detach().abs().float(), *pattern.nm).cpu() for name, w in weights.items()}
    if pattern.groups is not None:
        index = pattern.groups
        removed = ~index.keep_of(current) if current is not None else None
        keep, _ = select(index, magnitudes(index, weights), sparsity, scope, removed)
        return {name: torch.ones_like(w, dtype=torch.bool, device="cpu") for name, w in weights.items()} | index.expand(
            keep
        )
    return magnitude_masks(weights, sparsity, scope, current)


def apply_level(model: nn.Module, sparsity: float, scope: Scope = "layer", pattern: Pattern = WEIGHTS) -> None:
    """IMP's prune: fix every masked module's mask at `sparsity`, pruning the smallest of the remaining weights
    (or groups)."""
    modules = masked_modules(model)
    current = {name: m.mask for name, m in modules.items()}
    masks = pattern_masks(model, sparsity, scope, pattern, current)
    for name, module in modules.items():
        module.set_mask(masks[name])


def init_scores(
    model: nn.Module,
    sparsity: float,
    method: Literal["hard", "soft"],
    scope: Scope = "layer",
    pattern: Pattern = WEIGHTS,
) -> None:
    """Switch every masked module to learnable scores whose initial mask is the magnitude mask at `sparsity`.

    hard: scores 0 for the pruned weights and 2φ for the rest, threshold φ (the paper's magnitude init);
    soft: scores |W| and the threshold at the k-th smallest |W| (the paper's init for gradual sparsity).
    With groups the scores are one per group (hard: 0 / 2φ from the magnitude ranking; soft: the root-mean-square
    weights); with N:M the mask is the top N of every M scores, so there is no threshold.
    """
    modules = masked_modules(model)
    if pattern.groups is not None:
        _init_group_scores(model, sparsity, method, scope, pattern.groups)
        return
    if pattern.nm is not None:
        for module in modules.values():
            scores = module.weight.detach().abs().float()
            if method == "hard":
                scores = nm_mask(scores, *pattern.nm).to(torch.float32) * (2 * PHI)
            module.set_scores(scores, 0.0, pattern.nm)
        return
    if method == "hard":
        masks = magnitude_masks(model_weights(model), sparsity, scope)
        for name, module in modules.items():
            scores = masks[name].to(torch.float32) * (2 * PHI)
            module.set_scores(scores, PHI)
        return
    for module in modules.values():
        module.set_scores(module.weight.detach().abs().float(), 0.0)
    recalibrate(model, sparsity, scope)


def _init_group_scores(
    model: nn.Module, sparsity: float, method: Literal["hard", "soft"], scope: Scope, index: GroupIndex
) -> None:
    weights = model_weights(model)
    rms = magnitudes(index, weights)
    if method == "hard":
        keep, _ = select(index, rms, sparsity, scope)
        scores = keep.to(torch.float32) * (2 * PHI)
    else:
        scores = rms.to(torch.float32)
    device = next(iter(weights.values())).device
    groups = GroupScores(scores).to(device)
    model.add_module(GROUPS_MODULE, groups)
    ignored = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    model._keys_to_ignore_on_save = ignored | {f"{GROUPS_MODULE}.scores"}  # type: ignore[assignment]
    for name, module in masked_modules(model).items():
        if name in index.rows:
            module.set_groups(groups, index.rows[name], index.cols[name])
    if method == "hard":
        groups.threshold.fill_(PHI)
        groups.protected.copy_(protected(index, scores.double(), torch.zeros(index.count, dtype=torch.bool)))
    else:
        recalibrate(model, sparsity, scope, Pattern(groups=index))


def group_scores(model: nn.Module) -> GroupScores | None:
    groups = getattr(model, GROUPS_MODULE, None)
    return groups if isinstance(groups, GroupScores) else None


def recalibrate(model: nn.Module, sparsity: float, scope: Scope = "layer", pattern: Pattern = WEIGHTS) -> None:
    """Set each matrix's threshold to its k-th smallest score (k = round(n·s)), so the mask is the top-(1−s)
    scores again (the original `reset_threshold`). If the k-th score equals the largest one the threshold is
    left alone, as in the original: a tie that large cannot be split by a threshold. Groups: each budget unit's
    threshold is the score of the last group the selection removes (and each layer's best head and neuron are kept);
    N:M masks need no threshold."""
    if pattern.nm is not None:
        return
    if pattern.groups is not None:
        groups = group_scores(model)
        assert groups is not None, "group scores are made by init_scores"
        scores = groups.scores.detach().double().cpu()
        keep, threshold = select(pattern.groups, scores, sparsity, scope)
        guard = protected(pattern.groups, scores, torch.zeros(pattern.groups.count, dtype=torch.bool))
        with torch.no_grad():
            groups.threshold.copy_(threshold.to(groups.threshold))
            groups.protected.copy_(guard.to(groups.protected.device))
        return
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
