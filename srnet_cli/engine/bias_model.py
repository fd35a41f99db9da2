"""Bias-only models: hand-crafted lexical-overlap features + multinomial logistic regression.

Follows Clark et al. (2019)'s MNLI bias model (used by the SRNet paper, App. B.3.1) without its fastText
similarity features, which need word vectors we cannot ship: the hypothesis-in-premise rate, "all hypothesis
words present", "hypothesis is a contiguous subsequence", the length difference and negation words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from srnet_cli.engine.readers import Example

NEGATIONS = frozenset({"not", "no", "never", "nobody", "nothing", "none", "nowhere", "neither", "nor", "n't", "cannot"})
FEATURES = ("overlap_rate", "all_present", "contiguous", "length_diff", "neg_hypothesis", "neg_premise")
_WORD = re.compile(r"n't|\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _contains_contiguous(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def overlap_features(premise: str, hypothesis: str) -> list[float]:
    """The feature vector of one pair, in FEATURES order."""
    p, h = words(premise), words(hypothesis)
    p_set = set(p)
    rate = sum(w in p_set for w in h) / len(h) if h else 0.0
    return [
        rate,
        float(bool(h) and rate == 1.0),
        float(_contains_contiguous(p, h)),
        (len(p) - len(h)) / 10.0,
        float(any(w in NEGATIONS for w in h)),
        float(any(w in NEGATIONS for w in p)),
    ]


def feature_matrix(examples: Sequence[Example]) -> np.ndarray:
    return np.asarray([overlap_features(e.text_a, e.text_b) for e in examples], dtype=np.float64)


class LogisticRegression:
    """Multinomial logistic regression with L2, fitted by full-batch L-BFGS (deterministic, no sklearn)."""

    def __init__(self, l2: float = 1e-3) -> None:
        self.l2 = l2
        self.weight: torch.Tensor | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _standardise(self, x: np.ndarray) -> torch.Tensor:
        assert self.mean is not None and self.scale is not None
        z = (x - self.mean) / self.scale
        return torch.tensor(np.hstack([z, np.ones((len(z), 1))]), dtype=torch.float64)

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> LogisticRegression:
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-8
        feats, target = self._standardise(x), torch.tensor(y, dtype=torch.long)
        weight = torch.zeros(feats.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS(
            [weight], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(feats @ weight, target) + self.l2 * (weight[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        self.weight = weight.detach()
        return self

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        assert self.weight is not None, "fit() first"
        return torch.log_softmax(self._standardise(x) @ self.weight, dim=-1).numpy()
