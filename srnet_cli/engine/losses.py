"""Training losses. Every loss has one signature: `(logits, labels, bias_log_probs, teacher_probs) -> scalar`.

Only the training loss changes with debiasing; evaluation always uses the plain logits. `make_loss` adds the
annealed variants (bias probabilities raised to a power that decays over training) and the step counter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
LossFn = Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor]
StepLoss = Callable[[Tensor, Tensor, Tensor | None, Tensor | None, int], Tensor]  # ... and the 1-based step


def ce_loss(
    logits: Tensor, labels: Tensor, bias_log_probs: Tensor | None = None, teacher: Tensor | None = None
) -> Tensor:
    """Standard cross-entropy, -log p_m(y), averaged over the batch.

    With `labels` of shape [B, K] (multi-hot sets of allowed classes, used when OOD training data is coarser than
    the head, e.g. HANS non-entailment), the loss is -log sum_{j in set} p_m(j), which is CE for one-hot rows.
    """
    if labels.ndim == 2:
        allowed = logits.masked_fill(~labels.bool(), float("-inf"))
        return (torch.logsumexp(logits, dim=-1) - torch.logsumexp(allowed, dim=-1)).mean()
    return F.cross_entropy(logits, labels)


def poe_loss(logits: Tensor, labels: Tensor, bias_log_probs: Tensor | None, teacher: Tensor | None = None) -> Tensor:
    """Product of experts (Clark et al. 2019; SRNet paper §3.2): CE of softmax(log p_m + log p_b).

    The bias log-probabilities are a constant; examples the bias model already gets right contribute small
    gradients, so the main model is pushed towards what the bias cannot explain.
    """
    if bias_log_probs is None:
        raise ValueError("poe_loss needs bias log-probabilities")
    return F.cross_entropy(F.log_softmax(logits, dim=-1) + bias_log_probs, labels)


def reweight_loss(
    logits: Tensor, labels: Tensor, bias_log_probs: Tensor | None, teacher: Tensor | None = None
) -> Tensor:
    """Example reweighting (Schuster et al. 2019; Utama et al. 2020): per-example CE weighted by w = 1 − p_b(y),
    normalised by the batch's weight sum, Σ w·CE / Σ w (not a plain mean), as the original `ReweightBaseline`."""
    if bias_log_probs is None:
        raise ValueError("reweight_loss needs bias log-probabilities")
    weights = 1.0 - bias_log_probs.gather(1, labels.unsqueeze(1)).squeeze(1).exp()
    per_example = F.cross_entropy(logits, labels, reduction="none")
    return (weights * per_example).sum() / weights.sum().clamp_min(1e-12)


def conf_reg_loss(logits: Tensor, labels: Tensor, bias_log_probs: Tensor | None, teacher: Tensor | None) -> Tensor:
    """Confidence regularisation (Utama et al. 2020): the teacher's probabilities scaled by the exponent 1 − p_b(y)
    and renormalised, S_j = p_t,j^(1−β) / Σ_k p_t,k^(1−β), then the batch mean of −Σ_j S_j · log p_m,j.

    Where the bias model is confident on the gold label (β → 1) the target flattens towards uniform, so the model
    is discouraged from being over-confident on the examples a shortcut explains."""
    if bias_log_probs is None or teacher is None:
        raise ValueError("conf_reg_loss needs bias log-probabilities and teacher probabilities")
    beta = bias_log_probs.gather(1, labels.unsqueeze(1)).exp()
    scaled = teacher.clamp_min(1e-12).log() * (1.0 - beta)  # log p_t^(1-β), computed in log space (no 0^0)
    targets = torch.softmax(scaled, dim=-1)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def anneal_power(step: int, total: int, low: float, high: float) -> float:
    """The annealing exponent at 1-based `step`: linear from `high` (first step) to `low` (after `total` steps),
    i.e. `linspace(high, low, total + 1)[step - 1]` as the original's annealed losses."""
    return high - (high - low) * (step - 1) / max(1, total)


def anneal_bias(bias_log_probs: Tensor, power: float) -> Tensor:
    """log of p_b^power renormalised: power < 1 flattens the bias model, so fewer examples look "easy"."""
    return F.log_softmax(bias_log_probs * power, dim=-1)


LOSSES: dict[str, LossFn] = {"ce": ce_loss, "poe": poe_loss, "reweight": reweight_loss, "conf-reg": conf_reg_loss}
NEEDS_BIAS: frozenset[str] = frozenset({"poe", "reweight", "conf-reg"})
NEEDS_TEACHER: frozenset[str] = frozenset({"conf-reg"})


def make_loss(kind: str, anneal: tuple[float, float] | None = None, total_steps: int = 1) -> StepLoss:
    """The training loss of a run: `LOSSES[kind]`, with the bias annealed from anneal[1] to anneal[0] if asked."""
    base = LOSSES[kind]
    if anneal is None:
        return lambda logits, labels, bias, teacher, step: base(logits, labels, bias, teacher)
    low, high = anneal

    def annealed(logits: Tensor, labels: Tensor, bias: Tensor | None, teacher: Tensor | None, step: int) -> Tensor:
        assert bias is not None, "annealing needs bias log-probabilities"
        return base(logits, labels, anneal_bias(bias, anneal_power(step, total_steps, low, high)), teacher)

    return annealed
