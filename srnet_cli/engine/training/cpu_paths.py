"""Faster CPU paths for the two things a stock encoder does slowly on a CPU: drawing dropout masks and attending
over short sequences. Both give the same model: only where random bits come from and which kernel multiplies.

Dropout. On a CPU, PyTorch draws `bernoulli_` masks with MKL's parallel generator on Intel CPUs only; elsewhere
(AMD) one thread draws a 64-bit number per element, a large share of a small encoder's training step. Here a mask
comes from 16 random bits per element, drawn in bulk by NumPy's SFC64 generator, which is seeded for each mask from
torch's generator: `torch.manual_seed` and a restored RNG state (resumed runs) reproduce every mask, and the masks
are the same on every CPU kind. The drop probability is rounded to a multiple of 1/65536 and kept elements are
scaled by the inverse of the rounded keep probability, so the expectation is exact in fp32 (in bf16 the scale is
rounded to bf16, as PyTorch's own dropout rounds it).

Attention. For a few dozen tokens, PyTorch's fused CPU attention kernel is slower than the plain products (batched
matmuls and a softmax); for long sequences it is much faster. Attention probabilities get dropout here too, so
training with attention dropout always takes the plain path (as PyTorch's own SDPA does on a CPU when it drops).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

Model = TypeVar("Model", bound=nn.Module)

ATTENTION = "srnet_cpu"  # the name srnet's attention function is registered under with transformers
MASK_BITS = 16
MASK_LEVELS = 1 << MASK_BITS
FUSED_MIN_KEYS = 64  # from this many keys on, PyTorch's fused kernel is the faster one (inference, fp32)


def dropout_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of `shape`: 0 where an element is dropped (probability `p`, rounded to a multiple of 1/65536) and
    1/keep-probability where it is kept."""
    import numpy as np

    drop_levels = min(MASK_LEVELS, round(p * MASK_LEVELS))
    if drop_levels == MASK_LEVELS:
        return torch.zeros(shape, dtype=dtype)
    count = shape.numel()
    seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64).item())
    words = np.random.SFC64(seed).random_raw((count + 3) // 4)  # four 16-bit draws per 64-bit word
    draws = words.view(np.uint16)[:count]
    mask = (draws >= drop_levels).astype(np.float32)  # NumPy converts and scales several times faster than torch
    mask *= MASK_LEVELS / (MASK_LEVELS - drop_levels)
    return torch.from_numpy(mask).view(shape).to(dtype)


def cpu_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":  # an accelerator's own generator is fast
        return nn.functional.dropout(x, p, training)
    return x * dropout_keep_mask(x.shape, p, x.dtype)


class CpuDropout(nn.Dropout):
    """`nn.Dropout` with masks from `dropout_keep_mask`. A subclass, because model code reads `.p` (attention passes
    it on as its dropout rate) and checks `isinstance(m, nn.Dropout)`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def cpu_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The attention function transformers calls under `ATTENTION` (same arguments and results as its eager and
    SDPA functions; `attention_mask` is additive, as for eager attention)."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    dropping = module.training and dropout > 0.0
    # bf16 stays on the plain path: the fused kernel's backward is slow in bf16 on a CPU
    if not dropping and query.dtype == torch.float32 and key.size(-2) >= FUSED_MIN_KEYS:
        output = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling)
        return output.transpose(1, 2).contiguous(), None
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropping:
        weights = cpu_dropout(weights, dropout, True)
    output = torch.matmul(weights, value)
    return output.transpose(1, 2).contiguous(), weights


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION, cpu_attention)
    AttentionMaskInterface.register(ATTENTION, eager_mask)


def use_cpu_paths(model: Model) -> Model:
    """Swap every `nn.Dropout` of `model` for `CpuDropout`, and its attention for `cpu_attention` where its family
    takes a pluggable attention function (the others draw attention dropout through an `nn.Dropout`)."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                swapped = CpuDropout(child.p, child.inplace)
                setattr(parent, name, swapped.train(child.training))
    if getattr(model, "_supports_attention_backend", False):
        _register()
        try:
            model.set_attn_implementation(ATTENTION)  # type: ignore[operator]  # a PreTrainedModel's
        except (ValueError, TypeError):
            pass  # a model that refuses a registered function keeps its own attention: the same results, slower
    return model
