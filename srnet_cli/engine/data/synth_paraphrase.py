"""Built-in paraphrase benchmark with a planted word-overlap shortcut, in the QQP and PAWS file formats.

Questions come from templates in this file. Each template relates two slots, either symmetrically ("what is the
difference between A and B": swapping A and B keeps the meaning) or not ("how do i get from A to B"). In training,
70% of duplicates reuse every word of the first question (a reordering that keeps the meaning, or the same question
with a word dropped) and 30% are rephrased in other words, while non-duplicates almost always share fewer words
(another question, or other slot fillers): full word overlap is a shortcut to "duplicate". `shortcut` is the
probability that a non-duplicate training pair follows it; the rest are *counter-examples*: the same words with the
two slots of an asymmetric template swapped. The PAWS-format sets contain only such full-overlap word-swap pairs,
half duplicates and half not, so overlap is uninformative there (the phenomenon PAWS was built to expose, Zhang et
al. 2019).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from srnet_cli.engine.data.synth_nli import write_tsv

# Each template has one or two surface forms that use the same words; {a} and {b} are the slots. REPHRASE gives
# each template a form with other words and the same meaning (a duplicate that word overlap does not reveal).
SYMMETRIC = [
    ("what is the difference between {a} and {b} ?",),
    ("how far is it from {a} to {b} ?", "how far is it to {b} from {a} ?"),
    ("are {a} and {b} in the same country ?",),
    ("is the weather in {a} like the weather in {b} ?",),
]
ASYMMETRIC = [
    ("how do i get from {a} to {b} ?", "how do i get to {b} from {a} ?"),
    ("is it cheaper to fly from {a} to {b} ?", "is it cheaper to fly to {b} from {a} ?"),
    ("is {a} bigger than {b} ?",),
    ("why do people from {a} move to {b} ?", "why do people move to {b} from {a} ?"),
    ("does {a} have more people than {b} ?",),
    ("can you drive from {a} to {b} in one day ?", "can you drive to {b} from {a} in one day ?"),
]
REPHRASE = {
    SYMMETRIC[0]: "how do {a} and {b} differ ?",
    SYMMETRIC[1]: "what distance separates {a} and {b} ?",
    SYMMETRIC[2]: "do {a} and {b} belong to one nation ?",
    SYMMETRIC[3]: "is the climate of {a} similar to that of {b} ?",
    ASYMMETRIC[0]: "what route takes me from {a} to {b} ?",
    ASYMMETRIC[1]: "are flights from {a} to {b} less expensive ?",
    ASYMMETRIC[2]: "is {a} larger than {b} ?",
    ASYMMETRIC[3]: "what makes residents of {a} relocate to {b} ?",
    ASYMMETRIC[4]: "is the population of {a} larger than that of {b} ?",
    ASYMMETRIC[5]: "is a drive from {a} to {b} possible within a day ?",
}
REPHRASED_DUPLICATES = 0.3  # share of training duplicates that are rephrased (QQP duplicates often reword)
FILLERS = ("really", "actually", "now", "today")  # dropped from the first question: the second reuses every word
PLACES_QQP = [
    "paris",
    "london",
    "rome",
    "berlin",
    "madrid",
    "vienna",
    "prague",
    "lisbon",
    "dublin",
    "oslo",
    "athens",
    "warsaw",
    "zurich",
    "milan",
    "munich",
    "brussels",
]
PLACES_WIKI = ["tokyo", "delhi", "cairo", "lima", "sydney", "toronto", "nairobi", "seoul", "bangkok", "santiago"]

QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
PAWS_HEADER = ["id", "sentence1", "sentence2", "label"]


def _fill(form: str, a: str, b: str, filler: str | None = None) -> str:
    text = form.format(a=a, b=b)
    return text.replace(" ?", f" {filler} ?") if filler else text


def _template(rng: random.Random, symmetric: bool | None = None) -> tuple[tuple[str, ...], bool]:
    if symmetric is None:
        symmetric = rng.random() < 0.4
    return rng.choice(SYMMETRIC if symmetric else ASYMMETRIC), symmetric


def duplicate_rephrased(rng: random.Random, places: list[str]) -> tuple[str, str]:
    """Same meaning in other words (the slots keep their roles; a symmetric template may swap them)."""
    forms, symmetric = _template(rng)
    a, b = rng.sample(places, 2)
    q1 = _fill(rng.choice(forms), a, b)
    if symmetric and rng.random() < 0.5:
        a, b = b, a
    q2 = _fill(REPHRASE[forms], a, b)
    return (q1, q2) if rng.random() < 0.5 else (q2, q1)


def duplicate_full_overlap(rng: random.Random, places: list[str]) -> tuple[str, str]:
    """Same meaning, every word of q2 in q1: another surface form, a symmetric swap, or a dropped filler word."""
    forms, symmetric = _template(rng)
    a, b = rng.sample(places, 2)
    q1 = _fill(rng.choice(forms), a, b, rng.choice(FILLERS) if rng.random() < 0.5 else None)
    if symmetric and rng.random() < 0.5:
        a, b = b, a
    return q1, _fill(rng.choice(forms), a, b)


def non_duplicate_low_overlap(rng: random.Random, places: list[str]) -> tuple[str, str]:
    """Another question: other slot fillers in the same template, or another template altogether."""
    forms, _ = _template(rng)
    a, b, c, d = rng.sample(places, 4)
    q1 = _fill(rng.choice(forms), a, b)
    if rng.random() < 0.5:
        other, _ = _template(rng)
        while other == forms:
            other, _ = _template(rng)
        return q1, _fill(rng.choice(other), *rng.choice([(a, b), (c, d), (a, c)]))
    return q1, _fill(rng.choice(forms), *rng.choice([(a, c), (c, b), (c, d)]))


def non_duplicate_swap(rng: random.Random, places: list[str]) -> tuple[str, str]:
    """The counter-example: the same words with the slots of an asymmetric template swapped."""
    forms, _ = _template(rng, symmetric=False)
    a, b = rng.sample(places, 2)
    q1 = _fill(rng.choice(forms), a, b, rng.choice(FILLERS) if rng.random() < 0.3 else None)
    return q1, _fill(rng.choice(forms), b, a)


def sample_pair(rng: random.Random, places: list[str], duplicate: bool, shortcut: float) -> tuple[str, str]:
    if duplicate:
        rephrased = rng.random() < REPHRASED_DUPLICATES
        return duplicate_rephrased(rng, places) if rephrased else duplicate_full_overlap(rng, places)
    if rng.random() < shortcut:
        return non_duplicate_low_overlap(rng, places)
    return non_duplicate_swap(rng, places)


def paws_pair(rng: random.Random, places: list[str], duplicate: bool) -> tuple[str, str]:
    """A word-swap pair with full overlap: a duplicate (symmetric swap or reordering) or a role swap."""
    if not duplicate:
        return non_duplicate_swap(rng, places)
    a, b = rng.sample(places, 2)
    if rng.random() < 0.5:
        forms, _ = _template(rng, symmetric=True)
        return _fill(rng.choice(forms), a, b), _fill(rng.choice(forms), b, a)
    forms = rng.choice([f for f in ASYMMETRIC if len(f) == 2])  # the other surface form, same roles
    first = rng.randrange(2)
    return _fill(forms[first], a, b), _fill(forms[1 - first], a, b)


def qqp_rows(rng: random.Random, n: int, places: list[str], shortcut: float, first_id: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        duplicate = i % 8 < 3  # QQP is ~37% duplicates
        q1, q2 = sample_pair(rng, places, duplicate, shortcut)
        pair = first_id + i
        rows.append([str(pair), str(2 * pair), str(2 * pair + 1), q1, q2, str(int(duplicate))])
    rng.shuffle(rows)
    return rows


def paws_rows(rng: random.Random, n: int, places: list[str]) -> list[list[str]]:
    rows = []
    for i in range(n):
        duplicate = i % 2 == 0
        q1, q2 = paws_pair(rng, places, duplicate)
        rows.append([str(i + 1), q1, q2, str(int(duplicate))])
    rng.shuffle(rows)
    return rows


@dataclass(frozen=True)
class SynthParaphraseSpec:
    train_size: int = 8000
    dev_size: int = 1000
    challenge_size: int = 800  # pairs per PAWS-format set
    shortcut: float = 0.97
    seed: int = 1

    @property
    def ood_train_size(self) -> int:
        """Pairs of the PAWS-qqp and PAWS-wiki training sets together."""
        return 2 * self.challenge_size


def write_synth_paraphrase(out: Path, spec: SynthParaphraseSpec) -> dict[str, int]:
    """Write `QQP/{train,dev}.tsv`, `QQP/paws_qqp/{train,dev}.tsv` and `QQP/paws_wiki/{train,test}.tsv`."""
    if not 0.5 <= spec.shortcut <= 1.0:
        raise ValueError(f"shortcut must be in [0.5, 1], got {spec.shortcut}")
    rng = random.Random(spec.seed)
    files = {
        "QQP/train.tsv": (QQP_HEADER, qqp_rows(rng, spec.train_size, PLACES_QQP, spec.shortcut, 1)),
        "QQP/dev.tsv": (QQP_HEADER, qqp_rows(rng, spec.dev_size, PLACES_QQP, spec.shortcut, 500000)),
        "QQP/paws_qqp/dev.tsv": (PAWS_HEADER, paws_rows(rng, spec.challenge_size, PLACES_QQP)),
        "QQP/paws_wiki/test.tsv": (PAWS_HEADER, paws_rows(rng, spec.challenge_size, PLACES_WIKI)),
    }
    # PAWS training sets of the OOD-data study, from their own random stream (the files above do not change).
    ood = random.Random(spec.seed + 7919)
    files["QQP/paws_qqp/train.tsv"] = (PAWS_HEADER, paws_rows(ood, spec.challenge_size, PLACES_QQP))
    files["QQP/paws_wiki/train.tsv"] = (PAWS_HEADER, paws_rows(ood, spec.challenge_size, PLACES_WIKI))
    counts = {}
    for rel, (header, rows) in files.items():
        write_tsv(out / rel, header, rows)
        counts[rel] = len(rows)
    return counts
