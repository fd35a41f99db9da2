"""Training losses. Every loss has one signature: `(logits, labels, bias_log_probs, teacher_probs) -> scalar`;
learned-mixin also takes the gate's per-example values g(x).

Only the training loss changes with debiasing; evaluation always uses the plain logits. `make_loss` adds the
annealed variants (bias probabilities raised to a power that decays over training), the step counter and, for
learned-mixin, the gate on the model's representation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srnet_cli.engine.sparse.structure import config_of

Tensor = torch.Tensor
LossFn = Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor]


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


def learned_mixin_loss(
    logits: Tensor, labels: Tensor, bias_log_probs: Tensor, gate: Tensor, entropy_weight: float = 0.0
) -> Tensor:
    """Learned-mixin (Clark, Yatskar and Zettlemoyer, EMNLP 2019, §3.2.3; chrisc36/debias `LearnedMixin`): CE of
    softmax(log p_m + g(x)·log p_b), where g(x) = softplus(w·h_x + b) >= 0 is a learned gate on the example's
    representation, deciding per example how much to trust the bias. With `entropy_weight` w_H > 0 it is
    learned-mixin +H: plus w_H times the batch mean of the entropy H(softmax(g(x)·log p_b)), which keeps the gate
    from switching the bias off (a gate of 0 gives the uniform, highest-entropy distribution). Clark's code feeds
    the gate BERT's pooled output; srnet feeds it the first token's final hidden state, which every encoder family
    has (it is what BERT's pooler reads). `gate` holds g(x), shape [B] or [B, 1]."""
    scaled = gate.reshape(-1, 1) * bias_log_probs
    loss = F.cross_entropy(F.log_softmax(logits, dim=-1) + scaled, labels)
    if entropy_weight:
        log_p = F.log_softmax(scaled, dim=-1)
        loss = loss + entropy_weight * -(log_p.exp() * log_p).sum(dim=-1).mean()
    return loss


def focal_loss(
    logits: Tensor, labels: Tensor, bias_log_probs: Tensor | None, teacher: Tensor | None = None, gamma: float = 2.0
) -> Tensor:
    """Debiased focal loss (Karimi Mahabadi, Belinkov and Henderson, ACL 2020, eq. 5; rabeehk/robust-nli
    `FocalLoss` with the bias model's probabilities as its scale, alpha 1, gamma 2 by default): the batch mean of
    −(1 − p_b(y))^γ · log p_m(y). Examples the bias model gets right are down-weighted smoothly."""
    if bias_log_probs is None:
        raise ValueError("focal_loss needs bias log-probabilities")
    bias_p = bias_log_probs.gather(1, labels.unsqueeze(1)).squeeze(1).exp()
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
    return -((1.0 - bias_p) ** gamma * log_p).mean()


def anneal_power(step: int, total: int, low: float, high: float) -> float:
    """The annealing exponent at 1-based `step`: linear from `high` (first step) to `low` (after `total` steps),
    i.e. `linspace(high, low, total + 1)[step - 1]` as the original's annealed losses."""
    return high - (high - low) * (step - 1) / max(1, total)


def anneal_bias(bias_log_probs: Tensor, power: float) -> Tensor:
    """log of p_b^power renormalised: power < 1 flattens the bias model, so fewer examples look "easy"."""
    return F.log_softmax(bias_log_probs * power, dim=-1)


LOSSES: dict[str, LossFn] = {"ce": ce_loss, "poe": poe_loss, "reweight": reweight_loss, "conf-reg": conf_reg_loss}
GATED: frozenset[str] = frozenset({"learned-mixin", "learned-mixin-h"})
NEEDS_BIAS: frozenset[str] = frozenset({"poe", "reweight", "conf-reg", "focal", *GATED})
NEEDS_TEACHER: frozenset[str] = frozenset({"conf-reg"})
GATE = "srnet_gate"  # the learned-mixin gate's module name inside the model while it trains


def attach_gate(model: nn.Module) -> nn.Module:
    """Give the model learned-mixin's gate, g(x) = softplus(w·h_x + b) before the softplus, as a submodule: it
    then trains with the model (or, in mask training, with the scores), is averaged across processes like any
    parameter, and is in the resumable state; `_keys_to_ignore_on_save` keeps it out of saved checkpoints, which
    stay plain HF models (evaluation uses the main model's logits only)."""
    hidden = int(config_of(model).hidden_size)
    weight = next(model.parameters())
    model.add_module(GATE, nn.Linear(hidden, 1).to(device=weight.device, dtype=torch.float32))
    ignored = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    model._keys_to_ignore_on_save = ignored | {f"{GATE}.weight", f"{GATE}.bias"}  # type: ignore[assignment]
    return model


def gate_of(model: nn.Module) -> nn.Linear | None:
    """The model's learned-mixin gate, if `attach_gate` gave it one."""
    gate = dict(model.named_children()).get(GATE)
    return gate if isinstance(gate, nn.Linear) else None


@dataclass
class TrainingLoss:
    """A run's loss: `LOSSES[kind]` (or learned-mixin, focal), the bias annealed from anneal[1] to anneal[0] when
    asked. Called with the model's outputs (or bare logits), labels, bias log-probs, teacher probs and the step."""

    kind: str
    anneal: tuple[float, float] | None = None
    total_steps: int = 1
    entropy_weight: float = 0.0  # learned-mixin-h
    gamma: float = 2.0  # focal
    gate: nn.Linear | None = None  # learned-mixin: the model's `srnet_gate`

    @property
    def wants_hidden(self) -> bool:
        return self.kind in GATED

    def __call__(self, outputs: Any, labels: Tensor, bias: Tensor | None, teacher: Tensor | None, step: int) -> Tensor:
        logits = outputs if isinstance(outputs, Tensor) else outputs.logits
        if self.anneal is not None:
            assert bias is not None, "annealing needs bias log-probabilities"
            low, high = self.anneal
            bias = anneal_bias(bias, anneal_power(step, self.total_steps, low, high))
        if self.kind == "focal":
            return focal_loss(logits, labels, bias, gamma=self.gamma)
        if self.kind in GATED:
            assert bias is not None and self.gate is not None, "learned-mixin needs bias log-probs and its gate"
            wide = torch.promote_types(logits.dtype, torch.float32)  # the mixture in fp32 under bf16 autocast
            hidden = outputs.hidden_states[-1][:, 0].to(self.gate.weight.dtype)
            gate = F.softplus(self.gate(hidden)).to(wide)
            return learned_mixin_loss(logits.to(wide), labels, bias.to(wide), gate, self.entropy_weight)
        return LOSSES[self.kind](logits, labels, bias, teacher)


def make_loss(
    kind: str,
    anneal: tuple[float, float] | None = None,
    total_steps: int = 1,
    *,
    entropy_weight: float = 0.0,
    gamma: float = 2.0,
    model: nn.Module | None = None,
) -> TrainingLoss:
    """The training loss of a run; for learned-mixin, `model` must carry its gate (`attach_gate`)."""
    gate = gate_of(model) if model is not None else None
    if kind in GATED and gate is None:
        raise ValueError(f"loss {kind} needs the model's gate: attach_gate(model) first")
    return TrainingLoss(
        kind,
        anneal,
        total_steps,
        entropy_weight if kind == "learned-mixin-h" else 0.0,
        gamma,
        gate if kind in GATED else None,
    )
