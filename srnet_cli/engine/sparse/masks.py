"""Maskable linear layers, injected into a Hugging Face model in place of its `nn.Linear` modules.

`MaskedLinear` takes over the original `weight` and `bias` Parameters (same names, same objects), so the model's
state dict, `save_pretrained` and optimiser parameter groups are unchanged. A module is in one of two modes:

- fixed mask (IMP, retrain, evaluate): a boolean buffer; pruned weights are set to zero when the mask is applied.
  While the weights train, the forward pass multiplies by the mask so pruned weights get no gradient and AdamW
  (zero moments, decoupled decay of zero) leaves them exactly zero; with frozen weights it is a plain `F.linear`;
- learnable scores (mask training): a real-valued score per weight and a per-matrix threshold φ; the forward pass
  uses `W ⊙ 1[score > φ]` with a straight-through estimator (Liu et al. 2022 §3.3; Zhao et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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


class MaskedLinear(nn.Linear):
    """An `nn.Linear` whose weight is multiplied by a binary mask (see the module docstring for the two modes)."""

    mask: torch.Tensor
    scores: nn.Parameter | None
    threshold: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight  # the same Parameter objects: names and optimiser groups do not change
        self.bias = linear.bias
        self.register_buffer("mask", torch.ones_like(linear.weight, dtype=torch.bool), persistent=False)
        self.register_parameter("scores", None)
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float32), persistent=False)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Fix the mask and zero the pruned weights in place."""
        self.scores = None
        self.mask = mask.to(device=self.weight.device, dtype=torch.bool).reshape(self.weight.shape)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def set_scores(self, scores: torch.Tensor, threshold: float) -> None:
        """Switch to mask training: learnable scores, frozen weights (left untouched: the mask only multiplies)."""
        self.scores = nn.Parameter(scores.to(device=self.weight.device, dtype=torch.float32).clone())
        self.threshold = torch.tensor(float(threshold), device=self.weight.device)

    def current_mask(self) -> torch.Tensor:
        if self.scores is not None:
            return self.scores.detach() > self.threshold
        return self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scores is None:
            if self.training and self.weight.requires_grad:
                return F.linear(x, self.weight * self.mask, self.bias)
            return F.linear(x, self.weight, self.bias)  # pruned weights are already zero
        mask = BinarizeSTE.apply(self.scores, self.threshold)
        return F.linear(x, self.weight * mask.to(self.weight.dtype), self.bias)


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
