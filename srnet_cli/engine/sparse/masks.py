"""Maskable linear layers, injected into a Hugging Face model in place of its `nn.Linear` modules.

`MaskedLinear` takes over the original `weight` and `bias` Parameters (same names, same objects), so the model's
state dict, `save_pretrained` and optimiser parameter groups are unchanged. A module is in one of two modes:

- fixed mask (IMP, retrain, evaluate): a boolean buffer; pruned weights are set to zero when the mask is applied.
  While the weights train, the forward pass multiplies by the mask so pruned weights get no gradient and AdamW
  (zero moments, decoupled decay of zero) leaves them exactly zero; with frozen weights it is a plain `F.linear`;
- learnable scores (mask training): a real-valued score per weight and a per-matrix threshold φ; the forward pass
  uses `W ⊙ 1[score > φ]` with a straight-through estimator (Liu et al. 2022 §3.3; Zhao et al. 2020). With an N:M
  pattern the mask is instead the top-N scores of every M consecutive input weights of a row; with structured
  groups (groups.py) it is the expansion of the model's group keep-vector, whose scores are shared by every
  matrix a head or neuron spans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srnet_cli.engine.sparse.groups import GroupScores
from srnet_cli.engine.sparse.structure import is_encoder_weight
from srnet_cli.errors import MaskError

Masks = dict[str, torch.Tensor]  # weight name -> bool tensor of the weight's shape (True: kept)


class BinarizeSTE(torch.autograd.Function):
    """m = 1[score > φ] forward; the gradient w.r.t. the score is the gradient w.r.t. m (straight-through,
    no clipping: the original project's `MaskedLinear1`)."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def nm_mask(values: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the `n` largest of every `m` consecutive entries along each row (ties: the lower index)."""
    rows, cols = values.shape
    if cols % m:
        raise MaskError(f"a matrix of {cols} input columns cannot hold an {n}:{m} pattern", f"use a multiple of {m}")
    blocks = values.detach().reshape(rows, cols // m, m)
    keep = torch.zeros_like(blocks, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(blocks, n, dim=-1, sorted=False).indices, True)
    return keep.reshape(rows, cols)


def is_nm(mask: torch.Tensor, n: int, m: int) -> bool:
    """Whether every `m` consecutive weights of every row hold exactly `n` kept ones."""
    rows, cols = mask.shape
    return cols % m == 0 and bool((mask.reshape(rows, cols // m, m).sum(-1) == n).all())


class MaskedLinear(nn.Linear):
    """An `nn.Linear` whose weight is multiplied by a binary mask (see the module docstring for the modes)."""

    mask: torch.Tensor
    scores: nn.Parameter | None
    threshold: torch.Tensor
    nm: tuple[int, int] | None  # score mode with an N:M pattern instead of a threshold
    group_rows: torch.Tensor | None  # group mode: the group of each output row / input column (-1: none)
    group_cols: torch.Tensor | None

    def __init__(self, linear: nn.Linear) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight  # the same Parameter objects: names and optimiser groups do not change
        self.bias = linear.bias
        self.register_buffer("mask", torch.ones_like(linear.weight, dtype=torch.bool), persistent=False)
        self.register_parameter("scores", None)
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float32), persistent=False)
        self.nm = None
        self.group_rows = self.group_cols = None
        self._groups: list[GroupScores] = []  # the model's group scores, held outside the module tree
        self._evaluated_weight: torch.Tensor | None = None  # W ⊙ m within `masked_weights_once`

    def set_mask(self, mask: torch.Tensor) -> None:
        """Fix the mask and zero the pruned weights in place."""
        self.scores = None
        self.nm = None
        self.group_rows = self.group_cols = None
        self._groups = []
        self.mask = mask.to(device=self.weight.device, dtype=torch.bool).reshape(self.weight.shape)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def set_scores(self, scores: torch.Tensor, threshold: float, nm: tuple[int, int] | None = None) -> None:
        """Switch to mask training: learnable scores, frozen weights (left untouched: the mask only multiplies)."""
        self.scores = nn.Parameter(scores.to(device=self.weight.device, dtype=torch.float32).clone())
        self.threshold = torch.tensor(float(threshold), device=self.weight.device)
        self.nm = nm

    def set_groups(self, groups: GroupScores, rows: torch.Tensor, cols: torch.Tensor) -> None:
        """Switch to structured mask training: the mask is the expansion of `groups`' keep-vector."""
        self.scores = None
        self._groups = [groups]
        self.group_rows, self.group_cols = rows.to(self.weight.device), cols.to(self.weight.device)

    @property
    def grouped(self) -> bool:
        """In structured mask training: the mask is the model's group keep-vector, expanded."""
        return bool(self._groups)

    def _expanded(self, keep: torch.Tensor) -> torch.Tensor:
        assert self.group_rows is not None and self.group_cols is not None
        extended = torch.cat([keep, keep.new_ones(1)])
        return extended[self.group_rows][:, None] * extended[self.group_cols][None, :]

    def current_mask(self) -> torch.Tensor:
        if self._groups:
            return self._expanded(self._groups[0].keep().to(torch.float32)) > 0
        if self.scores is not None:
            if self.nm is not None:
                return nm_mask(self.scores, *self.nm)
            return self.scores.detach() > self.threshold
        return self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._evaluated_weight is not None:
            return F.linear(x, self._evaluated_weight, self.bias)
        if self._groups:
            mask = self._expanded(self._groups[0].keep_ste())
            return F.linear(x, self.weight * mask.to(self.weight.dtype), self.bias)
        if self.scores is None:
            if self.training and self.weight.requires_grad:
                return F.linear(x, self.weight * self.mask, self.bias)
            return F.linear(x, self.weight, self.bias)  # pruned weights are already zero
        if self.nm is not None:
            hard = nm_mask(self.scores, *self.nm).to(self.scores.dtype)
            mask = hard + self.scores - self.scores.detach()  # straight through, as BinarizeSTE
        else:
            mask = BinarizeSTE.apply(self.scores, self.threshold)
        return F.linear(x, self.weight * mask.to(self.weight.dtype), self.bias)


@contextmanager
def masked_weights_once(
    model: nn.Module, prepare: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Iterator[None]:
    """Within the block (an evaluation: no gradients), each mask being learnt multiplies its weight once, not at
    every forward pass: its scores cannot change, and every batch then reads the same W ⊙ m, passed through
    `prepare` (evaluation's oneDNN path marks it to be packed: `OneDnnLinears.hold`). A fixed mask already zeroed
    its weights and is left alone; with gradients on nothing changes, since training must read the scores at every
    pass."""
    if torch.is_grad_enabled():
        yield
        return
    learning = [m for m in model.modules() if isinstance(m, MaskedLinear) and (m.scores is not None or m.grouped)]
    before = [(module, module._evaluated_weight) for module in learning]  # a block within a block keeps its own
    try:
        for module in learning:
            weight = module.weight * module.current_mask().to(module.weight.dtype)
            module._evaluated_weight = weight if prepare is None else prepare(weight)
        yield
    finally:
        for module, held in before:
            module._evaluated_weight = held


def inject_masks(model: nn.Module, names: list[str]) -> list[str]:
    """Replace the named `nn.Linear` modules (a `Structure.targets` list) by maskable ones; returns the names."""
    modules = dict(model.named_modules())
    for name in names:
        if type(modules.get(name)) is not nn.Linear:
            raise MaskError(f"{name} is not a plain linear layer of this model", "use the model the mask was made for")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, MaskedLinear(getattr(parent, child)))
    return names


def inject_named(model: nn.Module, masks: Masks) -> None:
    """Make exactly the layers named by a mask's keys maskable, then fix their masks (names and shapes checked)."""
    modules = dict(model.named_modules())
    for key in masks:
        module = modules.get(key.removesuffix(".weight")) if key.endswith(".weight") else None
        if not isinstance(module, nn.Linear):
            raise MaskError(
                f"mask key {key} is not a linear layer of this model",
                "use the model the mask was made for (masks of bert-base do not fit roberta or minilm)",
            )
    names = [name for name in (key.removesuffix(".weight") for key in masks) if type(modules[name]) is nn.Linear]
    inject_masks(model, names)
    apply_masks(model, masks)


def masked_modules(model: nn.Module) -> dict[str, MaskedLinear]:
    """Masked modules by the name of their weight parameter (`bert.encoder.layer.0.attention.self.query.weight`)."""
    return {f"{name}.weight": m for name, m in model.named_modules() if isinstance(m, MaskedLinear)}


def masks_state(model: nn.Module) -> Masks:
    """The current binary masks as boolean CPU tensors, keyed by weight name."""
    return {name: m.current_mask().detach().cpu().clone() for name, m in masked_modules(model).items()}


def check_masks_fit(model: nn.Module, masks: Masks) -> None:
    """Names and shapes must match the model's masked modules exactly; the first bad key is named."""
    modules = masked_modules(model)
    for name, mask in masks.items():
        if name not in modules:
            raise MaskError(
                f"mask key {name} is not a masked layer of this model",
                "use the model the mask was made for (e.g. bert-base masks do not fit roberta or minilm)",
            )
        if tuple(mask.shape) != tuple(modules[name].weight.shape):
            raise MaskError(
                f"mask key {name} has shape {tuple(mask.shape)} but the layer has {tuple(modules[name].weight.shape)}",
                "use the model the mask was made for",
            )
    missing = [name for name in modules if name not in masks]
    if missing:
        raise MaskError(
            f"the mask has no entry for {missing[0]} (and {len(missing) - 1} more layers)",
            "use a mask made for this model, or one with every masked layer",
        )


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Fix every masked module's mask (zeroing pruned weights); checks names and shapes first."""
    check_masks_fit(model, masks)
    modules = masked_modules(model)
    for name, mask in masks.items():
        modules[name].set_mask(mask)


def unwrap(model: nn.Module) -> nn.Module:
    """Swap every `MaskedLinear` back to a plain `nn.Linear` holding W ⊙ m (the baked, prunable-nowhere model)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, MaskedLinear):
            plain = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
            plain = plain.to(device=module.weight.device, dtype=module.weight.dtype)
            with torch.no_grad():
                plain.weight.copy_(module.weight * module.current_mask())
                if module.bias is not None:
                    plain.bias.copy_(module.bias)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, plain)
    return model


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    numel: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


def mask_sparsity(masks: Masks) -> list[LayerSparsity]:
    return [LayerSparsity(name, m.numel(), int(m.numel() - m.sum().item())) for name, m in masks.items()]


def sparsity_summary(masks: Masks) -> dict[str, float | int]:
    """Overall sparsity over every masked matrix and over the encoder matrices only (the paper's denominator)."""
    layers = mask_sparsity(masks)
    encoder = [s for s in layers if is_encoder_weight(s.name)]

    def ratio(group: list[LayerSparsity]) -> float:
        total = sum(s.numel for s in group)
        return sum(s.zeros for s in group) / total if total else 0.0

    return {
        "sparsity": round(ratio(layers), 6),
        "encoder_sparsity": round(ratio(encoder), 6),
        "masked_weights": sum(s.numel for s in layers),
        "zeros": sum(s.zeros for s in layers),
        "layers": len(layers),
    }


def to_semi_structured(model: nn.Module, names: list[str]) -> int:
    """Convert the named (baked, 2:4) linear weights to PyTorch's semi-structured sparse format on a CUDA device,
    in fp16, for sparse tensor-core matmuls; returns how many were converted."""
    from torch.sparse import to_sparse_semi_structured

    for name in names:
        linear = model.get_submodule(name.removesuffix(".weight"))
        assert isinstance(linear, nn.Linear)
        weight = linear.weight.detach().to(device="cuda", dtype=torch.float16)
        if not is_nm(weight != 0, 2, 4):
            raise MaskError(f"{name} is not 2:4", "bake a 2:4 mask into the model first")
        linear.weight = nn.Parameter(to_sparse_semi_structured(weight), requires_grad=False)
    return len(names)
