"""Built-in fact-verification benchmark with a planted negation shortcut, in the FEVER and FEVER-Symmetric formats.

Each example pairs a claim with one evidence sentence built from templates in this file. The label is decided by
the value the claim states: the evidence's (SUPPORTS), another one (REFUTES), or a fact the evidence does not
mention (NOT ENOUGH INFO). A claim may also deny a second value ("born in rome , not in paris"); in training,
refuted claims almost always do and supported and not-enough-info claims almost never do, so a negation word in the
claim alone predicts REFUTES (the claim-only bias of FEVER, Schuster et al. 2019). `shortcut` is the probability
that a training claim follows it; the rest are *counter-examples*: a refuted claim without negation, or a supported
(or not-enough-info) claim with one. The FEVER-Symmetric-format sets are balanced so that negation is uninformative:
supported and refuted, each half with and half without a negation word.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from srnet_cli.engine.runs.files import write_text_atomic

PEOPLE = [
    "anna berg",
    "carlos ruiz",
    "mei chen",
    "omar haddad",
    "lena fischer",
    "ivan petrov",
    "sara costa",
    "tom walsh",
    "yuki tanaka",
    "nadia karim",
    "paul meyer",
    "eva novak",
    "raj patel",
    "lucia romano",
]
PEOPLE_SYMMETRIC = ["hugo larsen", "amira saleh", "jonas weber", "clara dumont", "diego silva", "ines moreau"]
CITIES = ["paris", "lisbon", "vienna", "oslo", "madrid", "prague", "dublin", "warsaw", "athens", "rome"]
FIELDS = ["physics", "music", "painting", "law", "medicine", "poetry", "chemistry", "economics"]
YEARS = [str(y) for y in range(1921, 1990, 3)]

# Each fact kind: the evidence sentence, the claim stating a value {v}, and the claim stating {v} while denying
# another value {w} (the negation word does not decide the label: the stated value does).
FACTS = {
    "born": (
        "{p} was born in {v} and grew up there .",
        "{p} was born in {v} .",
        "{p} was born in {v} , not in {w} .",
    ),
    "year": (
        "{p} , a well known author , was born in {v} .",
        "{p} was born in {v} .",
        "{p} was born in {v} and not in {w} .",
    ),
    "field": ("{p} studied {v} at the university of {c} .", "{p} studied {v} .", "{p} studied {v} and never {w} ."),
    "lived": ("{p} lived in {v} for most of their life .", "{p} lived in {v} .", "{p} lived in {v} , never in {w} ."),
}
VALUES = {"born": CITIES, "year": YEARS, "field": FIELDS, "lived": CITIES}
LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")


def _evidence(rng: random.Random, kind: str, person: str, value: str) -> str:
    return FACTS[kind][0].format(p=person, v=value, c=rng.choice(CITIES))


def _other(rng: random.Random, kind: str, value: str) -> str:
    return rng.choice([v for v in VALUES[kind] if v != value])


def claim_pair(rng: random.Random, people: list[str], label: str, negated: bool) -> tuple[str, str]:
    """(claim, evidence) with the given label; `negated` says whether the claim contains a negation word.

    The stated value decides: SUPPORTS states the evidence's value, REFUTES another one (a negated claim also denies
    a second value: the evidence's for REFUTES, "born in D, not in C"; another for SUPPORTS). NOT ENOUGH INFO is a
    claim about another fact kind than the evidence mentions."""
    kind = rng.choice(list(FACTS))
    person, value = rng.choice(people), rng.choice(VALUES[kind])
    evidence = _evidence(rng, kind, person, value)
    if label == "NOT ENOUGH INFO":
        kind = rng.choice([k for k in FACTS if VALUES[k] is not VALUES[kind]])
        stated = rng.choice(VALUES[kind])
        denied = _other(rng, kind, stated)
    elif label == "SUPPORTS":
        stated, denied = value, _other(rng, kind, value)
    else:
        stated, denied = _other(rng, kind, value), value
    form = FACTS[kind][2 if negated else 1]
    return form.format(p=person, v=stated, w=denied), evidence


def fever_records(rng: random.Random, n: int, people: list[str], shortcut: float) -> list[dict]:
    records = []
    for i in range(n):
        label = LABELS[i % 3]
        follows = rng.random() < shortcut
        negated = (label == "REFUTES") == follows  # refutes -> negation, others -> none, unless a counter-example
        claim, evidence = claim_pair(rng, people, label, negated)
        records.append({"claim": claim, "evidence": evidence, "gold_label": label})
    rng.shuffle(records)
    return [{"id": i, **r} for i, r in enumerate(records)]


def symmetric_records(rng: random.Random, n: int, people: list[str], version: int) -> list[dict]:
    """Balanced: SUPPORTS / REFUTES x with / without negation, in v1 (`evidence_sentence`, `label`) or v2 fields."""
    records = []
    for i in range(n):
        label, negated = LABELS[i % 2], (i // 2) % 2 == 1
        claim, evidence = claim_pair(rng, people, label, negated)
        if version == 1:
            records.append({"id": 90000 + i, "label": label, "claim": claim, "evidence_sentence": evidence})
        else:
            records.append({"id": 80000 + i, "claim": claim, "evidence": evidence, "gold_label": label, "label": label})
    rng.shuffle(records)
    return records


@dataclass(frozen=True)
class SynthFactSpec:
    train_size: int = 8000
    dev_size: int = 1000
    challenge_size: int = 800  # claims per FEVER-Symmetric-format set
    shortcut: float = 0.95
    seed: int = 1

    @property
    def ood_train_size(self) -> int:
        """Claims of the Symmetric v2 dev set (the OOD-data study's training addition)."""
        return self.challenge_size // 2


def write_synth_fact(out: Path, spec: SynthFactSpec) -> dict[str, int]:
    """Write `fever/fever.{train,dev}.jsonl`, `fever/sym1/test.jsonl` (v1 fields) and `fever/sym2/{dev,test}.jsonl`."""
    if not 0.5 <= spec.shortcut <= 1.0:
        raise ValueError(f"shortcut must be in [0.5, 1], got {spec.shortcut}")
    rng = random.Random(spec.seed)
    files = {
        "fever/fever.train.jsonl": fever_records(rng, spec.train_size, PEOPLE, spec.shortcut),
        "fever/fever.dev.jsonl": fever_records(rng, spec.dev_size, PEOPLE, spec.shortcut),
        "fever/sym1/test.jsonl": symmetric_records(rng, spec.challenge_size, PEOPLE_SYMMETRIC, 1),
        "fever/sym2/test.jsonl": symmetric_records(rng, spec.challenge_size, PEOPLE_SYMMETRIC, 2),
    }
    # Symmetric v2 dev (the OOD-data study trains on it): its own random stream, the files above do not change.
    files["fever/sym2/dev.jsonl"] = symmetric_records(
        random.Random(spec.seed + 7919), spec.challenge_size // 2, PEOPLE_SYMMETRIC, 2
    )
    for rel, records in files.items():
        write_text_atomic(out / rel, "".join(json.dumps(r) + "\n" for r in records))
    return {rel: len(records) for rel, records in files.items()}
