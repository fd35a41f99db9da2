"""Built-in NLI benchmark with a planted lexical-overlap shortcut, written in the MNLI and HANS file formats.

Every sentence comes from templates in this file (no external data). In the training distribution, non-entailed
pairs almost always have low lexical overlap, so a pair with full overlap (every hypothesis word occurs in the
premise) is almost always entailed: overlap is a shortcut (`sample_pair` says how entailed pairs are made).
`shortcut` is the probability that a non-entailed training pair follows it; the rest are *counter-examples*:
full-overlap pairs that are not entailed, half of them neutral (subject/object swap, a noun from a prepositional
phrase promoted to subject, a clause under "if" or "believed") and half contradictions (a clause under "it is false
that"), as the even neutral/contradiction split of a 2-class overlap bias model assumes (real MNLI's high-overlap
non-entailed pairs are of both kinds). The HANS-format challenge set is built only from full-overlap pairs, half
entailed and half not, so overlap is uninformative there: a model that learned the shortcut labels nearly all of it
"entailment" (the phenomenon studied by McCoy et al. 2019 and by the SRNet paper). Sentences end without a period:
here every sentence would have one, so it would tell a model nothing and only add two tokens to every pair, which
every training and evaluation step pays for.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from srnet_cli.engine.data.parse_tree import Tree, binary_parse, leaf, node, penn_parse, sentence_text
from srnet_cli.engine.runs.files import write_atomic

NOUNS_MATCHED = [
    "doctor",
    "lawyer",
    "artist",
    "senator",
    "student",
    "manager",
    "actor",
    "banker",
    "judge",
    "author",
    "tourist",
    "secretary",
    "professor",
    "athlete",
    "president",
    "scientist",
]
NOUNS_MISMATCHED = ["dancer", "painter", "singer", "farmer", "pilot", "chef", "nurse", "soldier", "baker", "poet"]
# (base, past, past participle)
TRANSITIVE = [
    ("see", "saw", "seen"),
    ("help", "helped", "helped"),
    ("call", "called", "called"),
    ("thank", "thanked", "thanked"),
    ("admire", "admired", "admired"),
    ("recognize", "recognized", "recognized"),
    ("avoid", "avoided", "avoided"),
    ("pay", "paid", "paid"),
    ("visit", "visited", "visited"),
    ("contact", "contacted", "contacted"),
    ("advise", "advised", "advised"),
    ("support", "supported", "supported"),
    ("encourage", "encouraged", "encouraged"),
    ("mention", "mentioned", "mentioned"),
]
# A near-synonym or hypernym of every noun: naming a person by it keeps a hypothesis true, and breaks its overlap
SYNONYMS = {
    "doctor": "physician",
    "lawyer": "attorney",
    "artist": "creator",
    "senator": "politician",
    "student": "pupil",
    "manager": "boss",
    "actor": "performer",
    "banker": "financier",
    "judge": "magistrate",
    "author": "writer",
    "tourist": "traveler",
    "secretary": "clerk",
    "professor": "teacher",
    "athlete": "sportsman",
    "president": "leader",
    "scientist": "researcher",
    "dancer": "ballerina",
    "painter": "illustrator",
    "singer": "vocalist",
    "farmer": "grower",
    "pilot": "aviator",
    "chef": "cook",
    "nurse": "caregiver",
    "soldier": "warrior",
    "baker": "confectioner",
    "poet": "versifier",
}
INTRANSITIVE = ["slept", "ran", "waited", "smiled", "left", "arrived", "danced", "laughed", "shouted", "resigned"]
ADJECTIVES = {"tall": "short", "young": "old", "happy": "sad", "rich": "poor", "quiet": "loud", "calm": "angry"}
PREPOSITIONS = ["near", "behind", "beside", "with"]
ADVERBS = ["quickly", "yesterday", "again", "politely"]

LABELS = ("contradiction", "entailment", "neutral")  # MNLI's label order (index 0, 1, 2)


@dataclass(frozen=True)
class Lexicon:
    nouns: list[str]

    def people(self, rng: random.Random, k: int) -> list[str]:
        return rng.sample(self.nouns, k)


# ----------------------------------------------------------------------------------------------- tree builders
def _np(noun: str, adj: str | None = None) -> Tree:
    words = [leaf("DT", "the")] + ([leaf("JJ", adj)] if adj else []) + [leaf("NN", noun)]
    return node("NP", *words)


def _np_pp(noun: str, prep: str, other: str) -> Tree:
    return node("NP", _np(noun), node("PP", leaf("IN", prep), _np(other)))


def _np_rel(noun: str, verb: str, other: str) -> Tree:
    return node(
        "NP",
        _np(noun),
        node("SBAR", node("WHNP", leaf("WP", "who")), node("S", node("VP", leaf("VBD", verb), _np(other)))),
    )


def _np_conj(a: str, b: str) -> Tree:
    return node("NP", _np(a), leaf("CC", "and"), _np(b))


def _vp(verb: str, obj: Tree | None = None, *extra: Tree) -> Tree:
    return node("VP", leaf("VBD", verb), *([obj] if obj is not None else []), *extra)


def _s(subj: Tree, vp: Tree) -> Tree:
    return node("S", subj, vp)


# ---------------------------------------------------------------------------------------------- constructions
Pair = tuple[Tree, Tree]
Construction = Callable[[random.Random, Lexicon], Pair]


def _svo(rng: random.Random, lex: Lexicon) -> tuple[str, str, tuple[str, str, str]]:
    a, b = lex.people(rng, 2)
    return a, b, rng.choice(TRANSITIVE)


def reword(tree: Tree, rng: random.Random, rate: float, at_least_one: bool = False) -> Tree:
    """`tree` with each person noun named by its synonym with probability `rate` (at least one if asked)."""
    nouns = [w for w in tree.words() if w in SYNONYMS]
    chosen = {i for i in range(len(nouns)) if rng.random() < rate}
    if at_least_one and not chosen and nouns:
        chosen = {rng.randrange(len(nouns))}
    position = iter(range(len(nouns)))

    def walk(t: Tree) -> Tree:
        if t.word is not None:
            return leaf(t.label, SYNONYMS[t.word]) if t.word in SYNONYMS and next(position) in chosen else t
        return node(t.label, *(walk(c) for c in t.children))

    return walk(tree)


def _maybe_adj(rng: random.Random, template: int) -> str | None:
    return rng.choice(list(ADJECTIVES)) if template == 2 else None


def ent_passive(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    hyp = _s(
        _np(b), node("VP", leaf("VBD", "was"), node("VP", leaf("VBN", v[2]), node("PP", leaf("IN", "by"), _np(a))))
    )
    return _s(_np(a), _vp(v[1], _np(b))), hyp


def ent_someone_subject(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    return _s(_np(a), _vp(v[1], _np(b))), _s(node("NP", leaf("NN", "someone")), _vp(v[1], _np(b)))


def ent_someone_object(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    return _s(_np(a), _vp(v[1], _np(b))), _s(_np(a), _vp(v[1], node("NP", leaf("NN", "someone"))))


def con_not(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    hyp = _s(_np(a), node("VP", leaf("VBD", "did"), leaf("RB", "not"), node("VP", leaf("VB", v[0]), _np(b))))
    return _s(_np(a), _vp(v[1], _np(b))), hyp


def con_nobody(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    return _s(_np(a), _vp(v[1], _np(b))), _s(node("NP", leaf("NN", "nobody")), _vp(v[1], _np(b)))


def con_never(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    hyp = _s(_np(a), node("VP", node("ADVP", leaf("RB", "never")), leaf("VBD", v[1]), _np(b)))
    return _s(_np(a), _vp(v[1], _np(b))), hyp


def con_antonym(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    adj, antonym = rng.choice(list(ADJECTIVES.items()))
    hyp = _s(_np(a), node("VP", leaf("VBD", "was"), node("ADJP", leaf("JJ", antonym))))
    return _s(_np(a, adj), _vp(v[1], _np(b))), hyp


def neu_new_object(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, c = lex.people(rng, 3)
    v = rng.choice(TRANSITIVE)
    return _s(_np(a), _vp(v[1], _np(b))), _s(_np(a), _vp(v[1], _np(c)))


def neu_add_adj(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    return _s(_np(a), _vp(v[1], _np(b))), _s(_np(a, rng.choice(list(ADJECTIVES))), _vp(v[1], _np(b)))


def neu_add_pp(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, c = lex.people(rng, 3)
    v = rng.choice(TRANSITIVE)
    hyp = _s(_np(a), _vp(v[1], _np(b), node("PP", leaf("IN", rng.choice(PREPOSITIONS)), _np(c))))
    return _s(_np(a), _vp(v[1], _np(b))), hyp


def neu_wanted(rng: random.Random, lex: Lexicon) -> Pair:
    a, b, v = _svo(rng, lex)
    inner = node("S", node("VP", leaf("TO", "to"), node("VP", leaf("VB", v[0]), _np(b))))
    return _s(_np(a), _vp(v[1], _np(b))), _s(_np(a), node("VP", leaf("VBD", "wanted"), inner))


# Full-overlap constructions: the HANS subcases. Each takes a template number (1 plain, 2 with an adjective).
def ln_swap(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, v = _svo(rng, lex)
    adj = _maybe_adj(rng, t)
    return _s(_np(a, adj), _vp(v[1], _np(b))), _s(_np(b), _vp(v[1], _np(a, adj)))


def ln_preposition(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v, prep = rng.choice(TRANSITIVE), rng.choice(PREPOSITIONS)
    if t == 2:
        return _s(_np(a), _vp(v[1], _np_pp(b, prep, c))), _s(_np(a), _vp(v[1], _np_pp(c, prep, b)))
    return _s(_np_pp(a, prep, c), _vp(v[1], _np(b))), _s(_np_pp(c, prep, a), _vp(v[1], _np(b)))


def le_relative_clause(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v, w = rng.sample(TRANSITIVE, 2)
    adj = _maybe_adj(rng, t)
    return _s(_np_rel(a, w[1], c), _vp(v[1], _np(b, adj))), _s(_np(a), _vp(v[1], _np(b, adj)))


def le_conjunction(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v = rng.choice(TRANSITIVE)
    adj = _maybe_adj(rng, t)
    return _s(_np_conj(a, c), _vp(v[1], _np(b, adj))), _s(_np(c), _vp(v[1], _np(b, adj)))


def sn_pp_on_subject(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v, prep = rng.choice(TRANSITIVE), rng.choice(PREPOSITIONS)
    adj = _maybe_adj(rng, t)
    return _s(_np_pp(a, prep, c), _vp(v[1], _np(b, adj))), _s(_np(c), _vp(v[1], _np(b, adj)))


def sn_relative_clause_on_subject(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v, w = rng.sample(TRANSITIVE, 2)
    adj = _maybe_adj(rng, t)
    return _s(_np_rel(a, w[1], c), _vp(v[1], _np(b, adj))), _s(_np(c), _vp(v[1], _np(b, adj)))


def se_pp_on_object(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, c = lex.people(rng, 3)
    v, prep = rng.choice(TRANSITIVE), rng.choice(PREPOSITIONS)
    adj = _maybe_adj(rng, t)
    return _s(_np(a, adj), _vp(v[1], _np_pp(b, prep, c))), _s(_np(a, adj), _vp(v[1], _np(b)))


def se_adverb(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    a, b, v = _svo(rng, lex)
    adj = _maybe_adj(rng, t)
    adv = node("ADVP", leaf("RB", rng.choice(ADVERBS)))
    return _s(_np(a, adj), _vp(v[1], _np(b), adv)), _s(_np(a, adj), _vp(v[1], _np(b)))


def _embedded(rng: random.Random, lex: Lexicon, t: int, word: str, tag: str) -> Pair:
    a, b = lex.people(rng, 2)
    v1, v2 = rng.sample(INTRANSITIVE, 2)
    adj = _maybe_adj(rng, t)
    inner = _s(_np(a, adj), _vp(v1))
    if tag == "VBD":  # "the lawyer believed/knew that the doctor slept"
        prem = _s(_np(b), node("VP", leaf("VBD", word), node("SBAR", leaf("IN", "that"), inner)))
    else:  # "if/since the doctor slept , the lawyer ran"
        prem = node("S", node("SBAR", leaf("IN", word), inner), leaf(",", ","), _np(b), _vp(v2))
    return prem, _s(_np(a, adj), _vp(v1))


def cn_embedded_under_if(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    return _embedded(rng, lex, t, "if", "IN")


def cn_embedded_under_verb(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    return _embedded(rng, lex, t, rng.choice(["believed", "hoped", "suspected"]), "VBD")


def ce_embedded_under_since(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    return _embedded(rng, lex, t, rng.choice(["since", "because"]), "IN")


def ce_embedded_under_verb(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    return _embedded(rng, lex, t, rng.choice(["knew", "forgot", "noticed"]), "VBD")


def con_false_that(rng: random.Random, lex: Lexicon, t: int) -> Pair:
    """A full-overlap contradiction (ID sets only): "it is false that the doctor slept" / "the doctor slept"."""
    a = lex.people(rng, 1)[0]
    inner = _s(_np(a, _maybe_adj(rng, t)), _vp(rng.choice(INTRANSITIVE)))
    falsity = node("ADJP", leaf("JJ", rng.choice(["false", "untrue"])))
    verb = node("VP", leaf("VBZ", "is"), falsity, node("SBAR", leaf("IN", "that"), inner))
    return node("S", node("NP", leaf("PRP", "it")), verb), inner


# (heuristic, subcase, hans gold label, builder); subcase names follow HANS's naming scheme.
HANS_SUBCASES: list[tuple[str, str, str, Callable[[random.Random, Lexicon, int], Pair]]] = [
    ("lexical_overlap", "ln_subject/object_swap", "non-entailment", ln_swap),
    ("lexical_overlap", "ln_preposition", "non-entailment", ln_preposition),
    ("lexical_overlap", "le_relative_clause", "entailment", le_relative_clause),
    ("lexical_overlap", "le_conjunction", "entailment", le_conjunction),
    ("subsequence", "sn_PP_on_subject", "non-entailment", sn_pp_on_subject),
    ("subsequence", "sn_relative_clause_on_subject", "non-entailment", sn_relative_clause_on_subject),
    ("subsequence", "se_PP_on_obj", "entailment", se_pp_on_object),
    ("subsequence", "se_adverb", "entailment", se_adverb),
    ("constituent", "cn_embedded_under_if", "non-entailment", cn_embedded_under_if),
    ("constituent", "cn_embedded_under_verb", "non-entailment", cn_embedded_under_verb),
    ("constituent", "ce_embedded_under_since", "entailment", ce_embedded_under_since),
    ("constituent", "ce_embedded_under_verb", "entailment", ce_embedded_under_verb),
]

ENTAILED_FULL_OVERLAP = [b for _, _, gold, b in HANS_SUBCASES if gold == "entailment"]
COUNTER_EXAMPLES = [b for _, _, gold, b in HANS_SUBCASES if gold == "non-entailment"]
ENTAILED_OTHER: list[Construction] = [ent_passive, ent_someone_subject, ent_someone_object]
CONTRADICTIONS: list[Construction] = [con_not, con_nobody, con_never, con_antonym]
NEUTRALS: list[Construction] = [neu_new_object, neu_add_adj, neu_add_pp, neu_wanted]


ENTAILED_FULL_OVERLAP_SHARE = 0.2
REWORDED_HANS_SHARE = 0.5  # of the other entailed pairs: a HANS entailed construction with reworded nouns
REWORD_RATE = 0.5  # per noun of a low-overlap pair's hypothesis, so that a synonym is no cue to the label


def sample_pair(rng: random.Random, lex: Lexicon, label: str, shortcut: float) -> Pair:
    """One ID pair of `label`. A non-entailed pair breaks the overlap shortcut with probability 1 - `shortcut`.

    Entailed pairs are HANS entailed constructions, with full overlap (a `ENTAILED_FULL_OVERLAP_SHARE` of them) or
    with a person named by a synonym (low overlap), or other entailments. So full overlap is rare (as in MNLI) and
    mostly entailed (the shortcut), while the entailed constructions themselves can be learnt from low-overlap pairs,
    as a model learns what entailment is from all of MNLI and not only from its full-overlap pairs.
    A neutral counter-example is a HANS non-entailed construction (whether the swapped roles or the clause under "if"
    hold is simply unknown); a contradiction one is a clause under "it is false that". With only neutral ones, PoE
    against a 2-class bias (non-entailed mass split evenly) learnt "full overlap -> neutral" and lost ID accuracy.
    """
    if label == "entailment":
        r = rng.random()
        if r < ENTAILED_FULL_OVERLAP_SHARE + (1 - ENTAILED_FULL_OVERLAP_SHARE) * REWORDED_HANS_SHARE:
            prem, hyp = rng.choice(ENTAILED_FULL_OVERLAP)(rng, lex, rng.choice([1, 2]))
            full_overlap = r < ENTAILED_FULL_OVERLAP_SHARE
            return prem, hyp if full_overlap else reword(hyp, rng, REWORD_RATE, at_least_one=True)
        return _low_overlap(rng, lex, ENTAILED_OTHER)
    if label == "contradiction":
        if rng.random() < 1 - shortcut:
            return con_false_that(rng, lex, rng.choice([1, 2]))
        return _low_overlap(rng, lex, CONTRADICTIONS)
    if rng.random() < 1 - shortcut:
        return rng.choice(COUNTER_EXAMPLES)(rng, lex, rng.choice([1, 2]))
    return _low_overlap(rng, lex, NEUTRALS)


def _low_overlap(rng: random.Random, lex: Lexicon, constructions: list[Construction]) -> Pair:
    """A pair of one of `constructions`, its hypothesis naming people by synonyms at REWORD_RATE."""
    prem, hyp = rng.choice(constructions)(rng, lex)
    return prem, reword(hyp, rng, REWORD_RATE)


# ------------------------------------------------------------------------------------------------------ writers
MNLI_TRAIN_HEADER = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "label1",
    "gold_label",
]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
HANS_HEADER = [
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "pairID",
    "heuristic",
    "subcase",
    "template",
]


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    write_atomic(path, write)


def _pair_columns(prem: Tree, hyp: Tree) -> list[str]:
    return [
        binary_parse(prem),
        binary_parse(hyp),
        penn_parse(prem),
        penn_parse(hyp),
        sentence_text(prem),
        sentence_text(hyp),
    ]


def mnli_rows(rng: random.Random, n: int, lex: Lexicon, genre: str, shortcut: float, dev: bool) -> list[list[str]]:
    rows = []
    for i in range(n):
        label = LABELS[i % 3]  # exactly balanced classes, shuffled below
        prem, hyp = sample_pair(rng, lex, label, shortcut)
        labels = [label] * (5 if dev else 1)
        rows.append(
            [str(i), str(100000 + i), f"{100000 + i}{label[0]}", genre, *_pair_columns(prem, hyp), *labels, label]
        )
    order = list(range(n))
    rng.shuffle(order)
    # Re-number after shuffling so `index` equals the row position, as in GLUE's files.
    return [[str(pos), *rows[src][1:]] for pos, src in enumerate(order)]


def hans_rows(rng: random.Random, per_subcase: int, lex: Lexicon) -> list[list[str]]:
    rows = []
    for heuristic, subcase, gold, build in HANS_SUBCASES:
        for j in range(per_subcase):
            template = 1 + j % 2
            prem, hyp = build(rng, lex, template)
            rows.append([gold, *_pair_columns(prem, hyp), "", heuristic, subcase, f"temp{template}"])
    for i, row in enumerate(rows):
        row[7] = f"ex{i}"
    return rows


@dataclass(frozen=True)
class SynthNliSpec:
    """Sizes and shortcut strength of one generated benchmark."""

    train_size: int = 8000
    dev_size: int = 1000
    hans_per_subcase: int = 100
    shortcut: float = 0.985  # ~40 neutral and ~40 contradiction counter-examples in 8,000 pairs
    seed: int = 1

    @property
    def ood_train_size(self) -> int:
        """Pairs of the HANS-format training set (`heuristics_train_set.txt`)."""
        return self.hans_per_subcase * len(HANS_SUBCASES)


def write_synth_nli(out: Path, spec: SynthNliSpec) -> dict[str, int]:
    """Write `MNLI/{train,dev_matched,dev_mismatched}.tsv` and `MNLI/hans/heuristics_{evaluation,train}_set.txt`."""
    if not 0.5 <= spec.shortcut <= 1.0:
        raise ValueError(f"shortcut must be in [0.5, 1], got {spec.shortcut}")
    rng = random.Random(spec.seed)
    matched, mismatched = Lexicon(NOUNS_MATCHED), Lexicon(NOUNS_MISMATCHED)
    all_nouns = Lexicon(NOUNS_MATCHED + NOUNS_MISMATCHED)
    root = out / "MNLI"
    files = {
        "MNLI/train.tsv": (MNLI_TRAIN_HEADER, mnli_rows(rng, spec.train_size, matched, "synth", spec.shortcut, False)),
        "MNLI/dev_matched.tsv": (MNLI_DEV_HEADER, mnli_rows(rng, spec.dev_size, matched, "synth", spec.shortcut, True)),
        "MNLI/dev_mismatched.tsv": (
            MNLI_DEV_HEADER,
            mnli_rows(rng, spec.dev_size, mismatched, "synth-mismatched", spec.shortcut, True),
        ),
        "MNLI/hans/heuristics_evaluation_set.txt": (HANS_HEADER, hans_rows(rng, spec.hans_per_subcase, all_nouns)),
    }
    counts = {}
    # The HANS-format training set of the OOD-data study, from its own random stream so the files above do not
    # change with it.
    files["MNLI/hans/heuristics_train_set.txt"] = (
        HANS_HEADER,
        hans_rows(random.Random(spec.seed + 7919), spec.hans_per_subcase, all_nouns),
    )
    for rel, (header, rows) in files.items():
        write_tsv(out / rel, header, rows)
        counts[rel] = len(rows)
    assert root.is_dir()
    return counts
