"""Training losses. Every loss has one signature: `(logits, labels, bias_log_probs) -> scalar`.

Only the training loss changes with debiasing; evaluation always uses the plain logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def ce_loss(logits: torch.Tensor, labels: torch.Tensor, bias_log_probs: torch.Tensor | None = None) -> torch.Tensor:
    """Standard cross-entropy, -log p_m(y), averaged over the batch.

    With `labels` of shape [B, K] (multi-hot sets of allowed classes, used when OOD training data is coarser than
    the head, e.g. HANS non-entailment), the loss is -log sum_{j in set} p_m(j), which is CE for one-hot rows.
    """
    if labels.ndim == 2:
        allowed = logits.masked_fill(~labels.bool(), float("-inf"))
        return (torch.logsumexp(logits, dim=-1) - torch.logsumexp(allowed, dim=-1)).mean()
    return F.cross_entropy(logits, labels)


def poe_loss(logits: torch.Tensor, labels: torch.Tensor, bias_log_probs: torch.Tensor | None) -> torch.Tensor:
    """Product of experts (Clark et al. 2019; SRNet paper §3.2): CE of softmax(log p_m + log p_b).

    The bias log-probabilities are a constant; examples the bias model already gets right contribute small
    gradients, so the main model is pushed towards what the bias cannot explain.
    """
    if bias_log_probs is None:
        raise ValueError("poe_loss needs bias log-probabilities")
    return F.cross_entropy(F.log_softmax(logits, dim=-1) + bias_log_probs, labels)


def reweight_loss(logits: torch.Tensor, labels: torch.Tensor, bias_log_probs: torch.Tensor | None) -> torch.Tensor:
    """Example reweighting (Schuster et al. 2019; Utama et al. 2020): per-example CE weighted by w = 1 − p_b(y),
    normalised by the batch's weight sum, Σ w·CE / Σ w (not a plain mean), as the original `ReweightBaseline`."""
    if bias_log_probs is None:
        raise ValueError("reweight_loss needs bias log-probabilities")
    weights = 1.0 - bias_log_probs.gather(1, labels.unsqueeze(1)).squeeze(1).exp()
    per_example = F.cross_entropy(logits, labels, reduction="none")
    return (weights * per_example).sum() / weights.sum().clamp_min(1e-12)


LOSSES: dict[str, LossFn] = {"ce": ce_loss, "poe": poe_loss, "reweight": reweight_loss}
NEEDS_BIAS: frozenset[str] = frozenset({"poe", "reweight"})
