"""Bias-only models: multinomial logistic regression on hand-crafted lexical-overlap features or on one side's words.

`overlap` follows Clark et al. (2019)'s MNLI bias model (used by the SRNet paper for MNLI and QQP, App. B.3.1)
without its fastText similarity features, which need word vectors we cannot ship: the hypothesis-in-premise rate,
"all hypothesis words present", "hypothesis is a contiguous subsequence" and the length difference. Like Clark's, it
models overlap only: no negation words (a hypothesis-only cue that would let it solve contradiction as well), and on
NLI it is fitted on entailment vs non-entailment (recipes/bias_model.fit).
`claim-only` (FEVER) and `hypothesis-only` (NLI) see one side of the pair only, as a bag of words: a stand-in for
the original's max-pooled fastText claim embeddings, with the same blindness to the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from srnet_cli.engine.readers import Example

FEATURES = ("overlap_rate", "all_present", "contiguous", "length_diff")
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
    ]


def feature_matrix(examples: Sequence[Example]) -> np.ndarray:
    return np.asarray([overlap_features(e.text_a, e.text_b) for e in examples], dtype=np.float64)


def bow_vocabulary(texts: Sequence[str], max_words: int = 20000, min_count: int = 2) -> dict[str, int]:
    """Words seen at least `min_count` times, most frequent first (ties alphabetical, so the order is stable)."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in set(words(text)):
            counts[word] = counts.get(word, 0) + 1
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))[:max_words]
    return {w: i for i, w in enumerate(kept)}


def bow_matrix(texts: Sequence[str], vocab: dict[str, int]) -> torch.Tensor:
    """Sparse binary word-presence matrix with a final constant column (the intercept); unknown words ignored."""
    rows, cols = [], []
    for r, text in enumerate(texts):
        for c in sorted({vocab[w] for w in words(text) if w in vocab} | {len(vocab)}):
            rows.append(r)
            cols.append(c)
    values = torch.ones(len(rows), dtype=torch.float64)
    shape = (len(texts), len(vocab) + 1)
    return torch.sparse_coo_tensor(torch.tensor([rows, cols]), values, shape, check_invariants=True).coalesce()


class LogisticRegression:
    """Multinomial logistic regression with L2 (not on the intercept), fitted by full-batch L-BFGS (deterministic,
    no sklearn). Dense numpy features are standardised and given an intercept; a sparse torch matrix (bag of words)
    is used as it is and must carry its own constant last column."""

    def __init__(self, l2: float = 1e-3) -> None:
        self.l2 = l2
        self.weight: torch.Tensor | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _standardise(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        assert self.mean is not None and self.scale is not None
        z = (x - self.mean) / self.scale
        return torch.tensor(np.hstack([z, np.ones((len(z), 1))]), dtype=torch.float64)

    def fit(self, x: np.ndarray | torch.Tensor, y: np.ndarray, n_classes: int) -> LogisticRegression:
        if not isinstance(x, torch.Tensor):
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

    def log_probs(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        assert self.weight is not None, "fit() first"
        return torch.log_softmax(self._standardise(x) @ self.weight, dim=-1).numpy()
