"""The built-in NLI benchmark: formats, determinism, and the planted shortcut."""

import csv
import hashlib

import pytest

from srnet_cli.engine.data.parse_tree import binary_parse, leaf, node, penn_parse, sentence_text
from srnet_cli.engine.data.readers import load_split
from srnet_cli.engine.data.synth_nli import (
    ENTAILED_FULL_OVERLAP_SHARE,
    HANS_HEADER,
    MNLI_DEV_HEADER,
    MNLI_TRAIN_HEADER,
    SYNONYMS,
    SynthNliSpec,
    write_synth_nli,
)
from srnet_cli.engine.debias.clark_model import overlap_features


def _rows(path):
    with path.open() as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_tree_formats_by_hand():
    tree = node(
        "S", node("NP", leaf("DT", "the"), leaf("NN", "doctor")), node("VP", leaf("VBD", "slept")), leaf(".", ".")
    )
    assert sentence_text(tree) == "The doctor slept."
    assert penn_parse(tree) == "(ROOT (S (NP (DT The) (NN doctor)) (VP (VBD slept)) (. .)))"
    assert binary_parse(tree) == "( ( The doctor ) ( slept . ) )"


def test_files_have_upstream_columns(synth_dir):
    train = _rows(synth_dir / "MNLI/train.tsv")
    dev = _rows(synth_dir / "MNLI/dev_matched.tsv")
    hans = _rows(synth_dir / "MNLI/hans/heuristics_evaluation_set.txt")
    assert train[0] == MNLI_TRAIN_HEADER and len(MNLI_TRAIN_HEADER) == 12
    assert dev[0] == MNLI_DEV_HEADER and len(MNLI_DEV_HEADER) == 16
    assert hans[0] == HANS_HEADER and len(HANS_HEADER) == 11
    assert all(len(r) == 12 for r in train) and all(len(r) == 11 for r in hans)
    assert [r[0] for r in train[1:]] == [str(i) for i in range(240)]  # index = row position, like GLUE
    # parses spell the same sentence as the text column
    for row in hans[1:5]:
        words = [w for w in row[1].replace("(", " ").replace(")", " ").split()]
        assert " ".join(words).replace(" .", ".").replace(" ,", ",") == row[5]


def test_sentences_end_without_a_period_and_the_bench_puts_it_back(synth_dir):
    from srnet_cli.recipes.bench.workload import realistic_examples

    train = _rows(synth_dir / "MNLI/train.tsv")[1:]
    hans = _rows(synth_dir / "MNLI/hans/heuristics_evaluation_set.txt")[1:]
    sentences = [r[8:10] for r in train] + [r[5:7] for r in hans]
    assert sentences and not any(s.endswith(".") for pair in sentences for s in pair)
    parses = [r[4:8] for r in train] + [r[1:5] for r in hans]  # binary and Penn parses of both sentences
    assert not any("(. ." in p or " . )" in p for row in parses for p in row)
    # the bench times MNLI-like text: each whole generated sentence there ends with a period, as in MNLI (a
    # stretched premise of ~19 words holds several sentences; the last may be cut short) ...
    bench = realistic_examples(40, seed=1)
    assert sum(e.text_a.count(".") for e in bench) > 2 * len(bench)
    # ... and the very text it timed before the periods went (the hash of the earlier code's examples)
    text = "\n".join(f"{e.text_a}\t{e.text_b}\t{e.label}" for e in bench)
    assert hashlib.sha256(text.encode()).hexdigest() == BENCH_TEXT_SHA256


BENCH_TEXT_SHA256 = "7c7e02fe8d7ca63b49ea278ba643c6c59025aa8c3647f1563f638ddd67cfc581"


def test_deterministic_per_seed(tmp_path):
    digest = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_synth_nli(tmp_path / name, SynthNliSpec(train_size=60, dev_size=9, hans_per_subcase=2, seed=seed))
        digest.append(hashlib.sha256((tmp_path / name / "MNLI/train.tsv").read_bytes()).hexdigest())
    assert digest[0] == digest[1] != digest[2]


def test_overlap_is_a_shortcut_in_train_and_uninformative_in_hans(tmp_path):
    shortcut = 0.8
    write_synth_nli(tmp_path, SynthNliSpec(train_size=3000, dev_size=3, hans_per_subcase=20, shortcut=shortcut, seed=1))
    train = load_split("mnli", "train", tmp_path)
    full = {e.id: overlap_features(e.text_a, e.text_b)[1] == 1.0 for e in train.examples}
    non_ent = [e for e in train.examples if e.label != "entailment"]
    ent = [e for e in train.examples if e.label == "entailment"]
    assert sum(full[e.id] for e in non_ent) / len(non_ent) == pytest.approx(1 - shortcut, abs=0.03)
    # full overlap is rare and mostly entailed: a fifth of the entailed pairs, the rest reworded or other entailments
    assert sum(full[e.id] for e in ent) / len(ent) == pytest.approx(ENTAILED_FULL_OVERLAP_SHARE, abs=0.03)
    assert {e.label for e in train.examples} == {"entailment", "neutral", "contradiction"}
    # Counter-examples split evenly between neutral (HANS constructions) and contradiction ("it is false that"):
    # the same construction never carries two labels.
    counter = [e for e in non_ent if full[e.id]]
    false_that = [e.text_a.startswith(("It is false that", "It is untrue that")) for e in counter]
    assert all(f == (e.label == "contradiction") for e, f in zip(counter, false_that, strict=True))
    assert sum(false_that) / len(counter) == pytest.approx(0.5, abs=0.1)
    assert not any(e.text_a.startswith("It is") for e in ent)

    # low-overlap pairs name people by synonyms whatever their label: a synonym is at most a weak cue
    def reworded(examples):
        low = [e for e in examples if not full[e.id]]
        return sum(any(w.strip(".").lower() in SYNONYMS.values() for w in e.text_b.split()) for e in low) / len(low)

    assert 0.5 < reworded(non_ent) < reworded(ent) < reworded(non_ent) + 0.25
    hans = load_split("mnli", "hans", tmp_path)
    assert all(overlap_features(e.text_a, e.text_b)[1] == 1.0 for e in hans.examples)  # every word overlaps
    assert sum(e.label == "entailment" for e in hans.examples) == len(hans.examples) // 2
    assert len({dict(e.meta)["subcase"] for e in hans.examples}) == 12


def test_reword_names_people_by_their_synonyms_and_nothing_else():
    import random

    from srnet_cli.engine.data.synth_nli import NOUNS_MATCHED, Lexicon, le_relative_clause, reword

    rng = random.Random(0)
    _, hyp = le_relative_clause(rng, Lexicon(NOUNS_MATCHED), 2)
    words = hyp.words()
    everyone = reword(hyp, rng, 1.0).words()
    assert everyone == [SYNONYMS.get(w, w) for w in words] and everyone != words
    one = reword(hyp, rng, 0.0, at_least_one=True).words()
    assert sum(a != b for a, b in zip(one, words, strict=True)) == 1
    assert reword(hyp, rng, 0.0).words() == words
