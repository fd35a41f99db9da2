"""Bias-only models: logistic regression on hand-crafted lexical-overlap features or on one side's words.

`overlap` on MNLI is Clark et al. (2019)'s bias model as published (chrisc36/debias,
`debias/preprocessing/build_mnli_bias_only.py`; the SRNet paper's MNLI bias, App. B.3.1): the features
"hypothesis is a contiguous subsequence of the premise", "all hypothesis words are in the premise", the share of them
that are, log(max(len(p) − len(h), 1)), and over the hypothesis words the average, minimum and second-minimum of the
best cosine similarity to a premise word (word vectors: a fastText `.vec` file as published, or offline a model's
own input embeddings); entailment against non-entailment, liblinear's objective with `class_weight='balanced'` and
C=100 (`BalancedLogisticRegression`). Like Clark's it models overlap only: no negation words (a hypothesis-only cue
that would let it solve contradiction as well). On QQP, `overlap` is the earlier four-feature multinomial model
(`overlap_features`), fitted on both classes.
`claim-only` (FEVER) and `hypothesis-only` (NLI) see one side of the pair only, as a bag of words: a stand-in for
the original's max-pooled fastText claim embeddings, with the same blindness to the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from srnet_cli.engine.data.readers import Example

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


CLARK_FEATURES = (
    "h_is_subseq", "all_in_p", "percent_in_p", "log_len_diff", "average_sim", "min_similarity", "min2_similarity",
)  # fmt: skip
# Penn-Treebank-like tokens, as NLTK's tokenizer with punctuation split off: "don't." -> do, n't, .
_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


class WordVectors:
    """Unit-length word vectors for the similarity features, and where they came from (recorded in bias.json)."""

    def __init__(self, vectors: dict[str, np.ndarray], source: str) -> None:
        self.vectors, self.source = vectors, source

    def get(self, word: str) -> np.ndarray | None:
        found = self.vectors.get(word)
        return found if found is not None else self.vectors.get(word.lower())


def vocabulary(examples: Sequence[Example]) -> set[str]:
    return {w for e in examples for text in (e.text_a, e.text_b) for w in tokens(text)}


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


def read_vec_file(path: Path, words: set[str]) -> WordVectors:
    """A fastText text file (`N DIM` header, then `word v1 ... vDIM`), keeping the data's words (and their lower
    case), normalised to unit length as Clark et al. do."""
    wanted = words | {w.lower() for w in words}
    vectors: dict[str, np.ndarray] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
        dim = int(first[1]) if len(first) == 2 and all(x.isdigit() for x in first) else None
        if dim is None:
            f.seek(0)
        for line in f:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word in wanted and word not in vectors:
                vector = _unit(np.asarray(rest.split(), dtype=np.float64))
                if vector is not None and (dim is None or len(vector) == dim):
                    vectors[word] = vector
    return WordVectors(vectors, f"fasttext:{path}")


def embedding_vectors(model_name: str, words: set[str]) -> WordVectors:
    """The offline substitute: a word's vector is the mean of its word pieces' input embeddings in `model_name`
    (the embedded MiniLM by default), normalised. Contextless, like fastText's, but from a smaller vocabulary."""
    from transformers import AutoModel

    from srnet_cli.engine.training.models import _from_pretrained, load_tokenizer, resolve_model

    tokenizer = load_tokenizer(model_name)  # local, cached or hub, with the loaders' one-line errors
    model = _from_pretrained(AutoModel, resolve_model(model_name))
    table = model.get_input_embeddings().weight.detach().double()
    ordered = sorted(words)
    pieces = tokenizer(ordered, add_special_tokens=False)["input_ids"] if ordered else []
    vectors = {}
    for word, ids in zip(ordered, pieces, strict=True):
        vector = _unit(table[ids].mean(dim=0).numpy()) if ids else None
        if vector is not None:
            vectors[word] = vector
    return WordVectors(vectors, f"embeddings:{model_name}")


def clark_features(premise: str, hypothesis: str, vectors: WordVectors | None) -> list[float]:
    """One pair's features in CLARK_FEATURES order (the similarities are 0 where no word has a vector, as the
    published model's missing values are filled with 0)."""
    p_tokens, h_tokens = tokens(premise), tokens(hypothesis)
    p, h = [w.lower() for w in p_tokens], [w.lower() for w in h_tokens]
    p_set = set(p)
    present = sum(w in p_set for w in h)
    features = [
        float(_contains_contiguous(p, h)),
        float(present == len(h)),
        present / len(h) if h else 0.0,
        float(np.log(max(len(p) - len(h), 1))),
        0.0,
        0.0,
        0.0,
    ]
    if vectors is not None:
        h_vecs = [v for v in (vectors.get(w) for w in h_tokens) if v is not None]
        p_vecs = [v for v in (vectors.get(w) for w in p_tokens) if v is not None]
        if h_vecs and p_vecs:
            best = np.sort((np.stack(h_vecs) @ np.stack(p_vecs).T).max(axis=1))
            features[4] = float(best.sum() / len(h_tokens))  # over all hypothesis words, as published
            features[5] = float(best[0])
            features[6] = float(best[1]) if len(best) > 1 else 0.0
    return features


def clark_matrix(examples: Sequence[Example], vectors: WordVectors | None) -> np.ndarray:
    return np.asarray([clark_features(e.text_a, e.text_b, vectors) for e in examples], dtype=np.float64)


class BalancedLogisticRegression:
    """Binary logistic regression with liblinear's objective as scikit-learn calls it for Clark et al.'s model
    (`LogisticRegression(solver="liblinear", class_weight="balanced", C=100)`): minimise
    ½‖w‖² + C Σ_i c_i log(1 + exp(−y_i (w·x_i + b))) with the intercept b penalised like a weight (liblinear
    appends a constant feature), c_i = n / (2 n_{y_i}) (balanced), raw (unscaled) features. Fitted to convergence by
    full-batch L-BFGS in float64; `tests/test_bias.py` checks it against scikit-learn."""

    def __init__(self, c: float = 100.0) -> None:
        self.c = c
        self.weight: torch.Tensor | None = None

    @staticmethod
    def _augment(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.hstack([x, np.ones((len(x), 1))]), dtype=torch.float64)

    def fit(self, x: np.ndarray, y: np.ndarray) -> BalancedLogisticRegression:
        feats, sign = self._augment(x), torch.tensor(np.where(y == 1, 1.0, -1.0), dtype=torch.float64)
        counts = {label: max(1, int((y == label).sum())) for label in (0, 1)}
        balance = torch.tensor([len(y) / (2 * counts[int(label)]) for label in y], dtype=torch.float64)
        scale = 1.0 / (self.c * len(y))  # the same minimiser, with a loss of order one for L-BFGS's tolerances
        weight = torch.zeros(feats.shape[1], dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS(
            [weight], lr=1.0, max_iter=2000, tolerance_grad=1e-12, tolerance_change=1e-15, history_size=20,
            line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            data = self.c * (balance * torch.nn.functional.softplus(-sign * (feats @ weight))).sum()
            loss = scale * (0.5 * (weight**2).sum() + data)
            loss.backward()
            return loss

        optimiser.step(closure)
        self.weight = weight.detach()
        return self

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        """Columns: class 0 (non-entailment), class 1 (entailment)."""
        assert self.weight is not None, "fit() first"
        z = self._augment(x) @ self.weight
        return torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], dim=1).numpy()


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
