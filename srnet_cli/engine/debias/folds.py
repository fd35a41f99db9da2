"""Which training examples a learned bias model trains on, and which model predicts each example.

A bias model's predictions on its own training examples are optimistic (it has memorised them), and a debiasing
loss would then down-weight those examples for the wrong reason. With k folds every example is predicted by the
model of its own fold, which trained on the other folds only (optionally on a random subset of them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnet_cli.errors import UsageError


@dataclass(frozen=True)
class FoldPlan:
    """`trains_on[k]`: the example indices model k trains on; `predicts[k]`: the indices it predicts for bias.json.
    Without folds there is one model, which predicts every example (those it trained on too)."""

    trains_on: list[list[int]]
    predicts: list[list[int]]

    def seen_by_own_model(self) -> int:
        """How many examples are predicted by a model that trained on them (in-sample, optimistic)."""
        return sum(len(set(t) & set(p)) for t, p in zip(self.trains_on, self.predicts, strict=True))


def assign_folds(n: int, folds: int, seed: int) -> list[int]:
    """The fold of each of `n` examples: a seeded random permutation dealt round-robin, so fold sizes differ by at
    most one and the assignment depends on the seed only."""
    order = np.random.default_rng(seed).permutation(n)
    fold_of = [0] * n
    for position, index in enumerate(order.tolist()):
        fold_of[index] = position % folds
    return fold_of


def _subset(indices: list[int], size: int | None, seed: int) -> list[int]:
    """A seeded random subset of `size` of `indices`, in their original order (all of them when size is None)."""
    if size is None or size == len(indices):
        return sorted(indices)
    chosen = np.random.default_rng(seed).choice(len(indices), size=size, replace=False)
    return sorted(indices[i] for i in chosen.tolist())


def plan_folds(n: int, subset: int | None, folds: int | None, seed: int) -> FoldPlan:
    """The training and prediction indices of each bias model (one model when `folds` is None)."""
    if folds is not None and folds < 2:
        raise UsageError(f"--folds {folds}: k-fold needs at least 2 folds", "pass --folds 2 or more, or leave it out")
    if folds is not None and folds > n:
        raise UsageError(f"--folds {folds} is more than the {n} training examples", f"pass --folds {n} or fewer")
    if folds is None:
        _check_subset(subset, n, "the training data")
        return FoldPlan([_subset(list(range(n)), subset, seed)], [list(range(n))])
    fold_of = assign_folds(n, folds, seed)
    trains_on, predicts = [], []
    for k in range(folds):
        rest = [i for i in range(n) if fold_of[i] != k]
        _check_subset(subset, len(rest), f"the other folds of fold {k} ({folds} folds)")
        trains_on.append(_subset(rest, subset, seed + 1 + k))
        predicts.append([i for i in range(n) if fold_of[i] == k])
    return FoldPlan(trains_on, predicts)


def _check_subset(subset: int | None, available: int, what: str) -> None:
    if subset is not None and subset > available:
        raise UsageError(
            f"--subset {subset} is larger than {what}: {available} training examples",
            f"pass --subset {available} or fewer"
            + (", or fewer --folds (a shallow model is 2-fold unless --folds 1)" if "fold" in what else ""),
        )
