"""Structured subnetworks: attention heads and FFN neurons as groups of weights, placed by the structure map.

A head is its rows of Q, K and V (in every fused layout the map knows) and its columns of the attention output; a
neuron is its row of the FFN input (and of the gate, in a gated FFN) and its column of the FFN output. Every
encoder matrix gets, per output row and per input column, the group it belongs to (-1: none), so a group mask
expands to ordinary weight masks: `mask[r, c] = keep[row_group[r]] and keep[col_group[c]]`. Structured masks are
therefore weight masks like any other (mask files, retrain, evaluate, export), with sparsity over the same
denominator.

Selection (IMP's magnitude ranking, and mask training's recalibration) removes groups in ascending score order
until the removed weights are as close as a group allows to `sparsity` times the weights of the budget unit (each
layer for `mask.scope = "layer"`, the whole encoder for "global"); the first group that would overshoot by more
than half its size stops the walk, so the removed groups are exactly those scoring at most a threshold. Each
layer keeps its highest-scoring head and neuron, so every layer stays a transformer layer (a compact model has no
empty attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from srnet_cli.engine.sparse.structure import Placement, Structure
from srnet_cli.errors import MaskError

Scope = Literal["layer", "global"]
KINDS = {"head": ("head",), "neuron": ("neuron",), "head+neuron": ("head", "neuron")}
GROUPS_MODULE = "srnet_groups"  # mask training's group scores, a submodule of the searched model (never saved)


@dataclass(frozen=True)
class GroupIndex:
    """Every head and/or neuron of a model as a group of weights of its encoder matrices."""

    kinds: tuple[str, ...]  # per group: head | neuron
    layers: tuple[int, ...]  # per group: its mapped layer
    sizes: torch.Tensor  # per group: weights it holds (float64)
    rows: dict[str, torch.Tensor]  # encoder weight name -> group of each output row (-1: none)
    cols: dict[str, torch.Tensor]  # encoder weight name -> group of each input column (-1: none)
    layer_weights: tuple[int, ...]  # encoder weights of each mapped layer

    @property
    def count(self) -> int:
        return len(self.kinds)

    def expand(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weight masks of every encoder matrix from a boolean keep-vector over the groups."""
        extended = torch.cat([keep.to(torch.bool).cpu(), torch.ones(1, dtype=torch.bool)])
        return {name: extended[self.rows[name]][:, None] & extended[self.cols[name]][None, :] for name in self.rows}

    def keep_of(self, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """The groups a structured weight mask keeps; a mask that prunes part of a group, or a weight outside every
        group, is refused (it is not a structured mask)."""
        removed = torch.zeros(self.count, dtype=torch.bool)
        seen = torch.zeros(self.count, dtype=torch.bool)
        for name in self.rows:
            mask = masks[name].to(torch.bool).cpu()
            rows, cols = self.rows[name], self.cols[name]
            for axis, groups in ((1, rows), (0, cols)):  # a row group's row, a column group's column
                kept = mask.all(dim=axis)
                empty = ~mask.any(dim=axis)
                placed = groups >= 0
                if bool((~kept & ~empty & placed).any()):
                    raise MaskError(f"{name} prunes part of a head or neuron", "export a structured mask")
                removed[groups[placed & empty]] = True
                seen[groups[placed]] = True
            outside = (rows < 0)[:, None] & (cols < 0)[None, :]
            if bool((outside & ~mask).any()):
                raise MaskError(f"{name} prunes weights outside every head and neuron", "export a structured mask")
        expanded = self.expand(~removed)
        if any(not torch.equal(expanded[n], masks[n].to(torch.bool).cpu()) for n in self.rows):
            raise MaskError("the mask is not made of whole heads and neurons", "export a structured mask")
        return ~removed


def _rows(place: Placement, unit: int, width: int, total_rows: int) -> torch.Tensor:
    """Output rows of `unit` (a head of `width` rows, or a neuron: width 1) in a matrix holding `place`."""
    if place.parts == 1:
        start = unit * width
    elif place.per_head:  # interleaved: head h holds rows [h·parts·w + part·w, ...)
        start = (unit * place.parts + place.part) * width
    else:  # stacked: all units of part 0, then of part 1, ...
        start = place.part * (total_rows // place.parts) + unit * width
    return torch.arange(start, start + width)


def build_groups(model: nn.Module, structure: Structure, granularity: str) -> GroupIndex:
    """The heads and/or neurons of every mapped layer (`granularity`: head, neuron or head+neuron)."""
    if granularity not in KINDS:
        raise MaskError(f"granularity {granularity!r} has no groups", f"one of {', '.join(KINDS)}")
    wanted = KINDS[granularity]
    modules = dict(model.named_modules())
    roles = structure.family.roles
    shapes = {m: tuple(modules[m].weight.shape) for layer in structure.layers for m in layer.matrices}
    rows = {f"{m}.weight": torch.full((shape[0],), -1, dtype=torch.long) for m, shape in shapes.items()}
    cols = {f"{m}.weight": torch.full((shape[1],), -1, dtype=torch.long) for m, shape in shapes.items()}
    kinds: list[str] = []
    layers: list[int] = []
    sizes: list[int] = []
    hs = structure.head_size
    for li, layer in enumerate(structure.layers):
        mod = layer.modules
        units: list[tuple[str, int, list[tuple[str, str]]]] = []
        if "head" in wanted:
            q = roles["query"]
            heads = shapes[mod["query"]][0] // q.parts // hs
            units += [("head", h, [("query", "row"), ("key", "row"), ("value", "row"), ("attention_output", "col")])
                      for h in range(heads)]  # fmt: skip
        if "neuron" in wanted:
            f = roles["ffn_in"]
            width = shapes[mod["ffn_in"]][0] // f.parts
            gated = [("ffn_gate", "row")] if "ffn_gate" in roles else []
            units += [("neuron", n, [("ffn_in", "row"), *gated, ("ffn_out", "col")]) for n in range(width)]
        for kind, unit, parts in units:
            group = len(kinds)
            size = 0
            for role, axis in parts:
                name = f"{mod[role]}.weight"
                shape = shapes[mod[role]]
                width = hs if kind == "head" else 1
                if axis == "row":
                    index = _rows(roles[role], unit, width, shape[0])
                    rows[name][index] = group
                    size += len(index) * shape[1]
                else:
                    index = torch.arange(unit * width, (unit + 1) * width)
                    cols[name][index] = group
                    size += len(index) * shape[0]
            kinds.append(kind)
            layers.append(li)
            sizes.append(size)
    layer_weights = tuple(sum(shapes[m][0] * shapes[m][1] for m in layer.matrices) for layer in structure.layers)
    return GroupIndex(tuple(kinds), tuple(layers), torch.tensor(sizes, dtype=torch.float64), rows, cols,
                      layer_weights)  # fmt: skip


def magnitudes(index: GroupIndex, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each group's root-mean-square weight (its L2 norm over the square root of its size): the magnitude criterion
    by which IMP ranks heads and neurons, per weight so that a head and a neuron compare."""
    squares = torch.zeros(index.count + 1, dtype=torch.float64)
    for name, rows in index.rows.items():
        w2 = weights[name].detach().double().cpu() ** 2
        cols = index.cols[name]
        squares.index_add_(0, torch.where(rows >= 0, rows, index.count), w2.sum(dim=1) * (rows >= 0))
        by_col = w2.sum(dim=0) * (cols >= 0)
        squares.index_add_(0, torch.where(cols >= 0, cols, index.count), by_col)
        # a weight in both a row group and a column group (none in the six roles) would count twice
    return (squares[:-1] / index.sizes).sqrt()


def protected(index: GroupIndex, scores: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The highest-scoring remaining head and neuron of each layer: kept whatever the budget."""
    out = torch.zeros(index.count, dtype=torch.bool)
    best: dict[tuple[int, str], int] = {}
    for g in range(index.count):
        if bool(removed[g]):
            continue
        key = (index.layers[g], index.kinds[g])
        if key not in best or scores[g] > scores[best[key]]:
            best[key] = g
    out[list(best.values())] = True
    return out


def select(index: GroupIndex, scores: torch.Tensor, sparsity: float, scope: Scope,
           removed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(keep, threshold per group): groups already `removed` stay removed; the others are removed in ascending score
    order while that brings the removed weights of the budget unit closer to `sparsity` of its weights."""
    scores = scores.detach().double().cpu()
    removed = torch.zeros(index.count, dtype=torch.bool) if removed is None else removed.clone()
    guard = protected(index, scores, removed)
    layer_of = torch.tensor(index.layers)
    units = [layer_of == li for li in range(len(index.layer_weights))] if scope == "layer" else [layer_of >= 0]
    budgets = list(index.layer_weights) if scope == "layer" else [sum(index.layer_weights)]
    threshold = torch.full((index.count,), -float("inf"), dtype=torch.float64)
    for members, weights in zip(units, budgets, strict=True):
        target = sparsity * weights
        gone = float(index.sizes[members & removed].sum())
        candidates = torch.nonzero(members & ~removed & ~guard).flatten()
        order = candidates[torch.argsort(scores[candidates], stable=True)]
        cut = -float("inf")
        for g in order.tolist():
            size = float(index.sizes[g])
            if gone + size > target + size / 2:
                break
            removed[g] = True
            gone += size
            cut = float(scores[g])
        threshold[members] = cut
    return ~removed, threshold


class GroupScores(nn.Module):
    """Mask training over groups: one learnable score per group and a threshold per group (its budget unit's);
    a group is kept while its score is above the threshold, or when it is protected. The forward keep-vector
    passes gradients straight through to the scores (as the per-weight estimator does)."""

    threshold: torch.Tensor
    protected: torch.Tensor

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = nn.Parameter(scores.to(torch.float32).clone())
        self.register_buffer("threshold", torch.zeros_like(self.scores), persistent=False)
        self.register_buffer("protected", torch.zeros(scores.shape, dtype=torch.bool), persistent=False)

    def keep(self) -> torch.Tensor:
        return (self.scores.detach() > self.threshold) | self.protected

    def keep_ste(self) -> torch.Tensor:
        hard = self.keep().to(self.scores.dtype)
        return hard + self.scores - self.scores.detach()
