"""Bias features, logistic regression, and bias-file alignment (srnet JSON and the original .npy)."""

import json
import math

import numpy as np
import pytest

from srnet_cli.engine.data.readers import Dataset, Example
from srnet_cli.engine.debias.bias_files import load_bias, write_bias_json
from srnet_cli.engine.debias.clark_model import LogisticRegression, overlap_features
from srnet_cli.errors import BiasFileError

LABELS = ("contradiction", "entailment", "neutral")


def test_overlap_features_by_hand():
    # hypothesis words: the, lawyer, saw, the, doctor -> all in premise; not contiguous; 7 vs 5 words
    f = overlap_features("The doctor near the lawyer saw him.", "The lawyer saw the doctor.")
    assert f == pytest.approx([1.0, 1.0, 0.0, 0.2])
    f = overlap_features("The doctor saw the lawyer.", "The doctor did not see the nurse.")
    # hypothesis words: the, doctor, did, not, see, the, nurse -> 3 of 7 (the, doctor, the) in the premise
    assert f[0] == pytest.approx(3 / 7)
    assert f[1:] == pytest.approx([0.0, 0.0, (5 - 7) / 10])  # no negation feature: overlap only, as Clark's
    assert overlap_features("A man slept.", "A man slept")[2] == 1.0  # contiguous subsequence


def test_logistic_regression_learns_a_separable_rule():
    x = np.array([[0.0], [0.1], [0.2], [0.8], [0.9], [1.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    model = LogisticRegression(l2=1e-4).fit(x, y, 2)
    log_probs = model.log_probs(x)
    assert (log_probs.argmax(1) == y).all()
    assert np.allclose(np.exp(log_probs).sum(1), 1.0)


def _train(n: int, malformed: int = 0) -> Dataset:
    ex = [Example(f"train-{i}", "a", "b", LABELS[i % 3], i) for i in range(n)]
    return Dataset("mnli-train", "train.tsv", ex, [(99, "x")] * malformed, n_rows=n + malformed)


def test_json_round_trip_reorders_columns_by_name(tmp_path):
    path = tmp_path / "bias.json"
    lp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    write_bias_json(path, "mnli", "overlap", ["entailment", "neutral", "contradiction"], ["train-1", "train-0"], lp)
    got = load_bias(path, "mnli", LABELS, _train(2))
    # train-0 is the second row; columns come back in contradiction, entailment, neutral order
    assert got[0] == pytest.approx(np.log([0.6, 0.1, 0.3]), abs=1e-5)
    assert got[1] == pytest.approx(np.log([0.1, 0.7, 0.2]), abs=1e-5)


def test_json_missing_id_names_it(tmp_path):
    path = tmp_path / "bias.json"
    write_bias_json(path, "mnli", "overlap", list(LABELS), ["train-0"], np.log(np.full((1, 3), 1 / 3)))
    with pytest.raises(BiasFileError, match=r"no entry for example id 'train-1' \(2 ids missing\)"):
        load_bias(path, "mnli", LABELS, _train(3))


def test_json_nan_and_probabilities_are_rejected(tmp_path):
    path = tmp_path / "bias.json"
    write_bias_json(path, "mnli", "overlap", list(LABELS), ["train-0", "train-1"], np.array([[0.0, 0.0, 0.0]] * 2))
    payload = json.loads(path.read_text())
    payload["log_probs"]["train-1"] = [math.nan, -1.0, -1.0]
    path.write_text(json.dumps(payload).replace("NaN", "NaN"))
    with pytest.raises(BiasFileError, match="non-finite value for example id 'train-1'"):
        load_bias(path, "mnli", LABELS, _train(2))
    write_bias_json(path, "mnli", "overlap", list(LABELS), ["train-0"], np.array([[0.2, 0.5, 0.3]]))
    with pytest.raises(BiasFileError, match="holds probabilities, not log-probabilities"):
        load_bias(path, "mnli", LABELS, _train(1))


def test_original_npy_rows_follow_the_index_column(tmp_path):
    probs = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.3, 0.3, 0.4]], dtype=np.float32)
    np.save(tmp_path / "log_probs.npy", np.log(probs))
    train = _train(3)
    train.examples = [train.examples[2], train.examples[0]]  # a subset in another order (e.g. train_limit)
    got = load_bias(tmp_path / "log_probs.npy", "mnli", LABELS, train)
    assert np.exp(got) == pytest.approx(probs[[2, 0]], abs=1e-6)


def test_original_npy_length_mismatch_names_first_bad_id(tmp_path):
    np.save(tmp_path / "log_probs.npy", np.log(np.full((2, 3), 1 / 3)))
    with pytest.raises(BiasFileError, match=r"has 2 rows but train.tsv has 3 \(first id without a row: train-2\)"):
        load_bias(tmp_path / "log_probs.npy", "mnli", LABELS, _train(3))
    np.save(tmp_path / "wide.npy", np.zeros((3, 4)))
    with pytest.raises(BiasFileError, match=r"has 4 columns; mnli expects 3"):
        load_bias(tmp_path / "wide.npy", "mnli", LABELS, _train(3))
    # right length, but an index column that starts at 1: the last example has no row
    np.save(tmp_path / "lp.npy", np.log(np.full((3, 3), 1 / 3)))
    shifted = _train(3)
    shifted.examples = [e.__class__(f"train-{i + 1}", "a", "b", e.label, i) for i, e in enumerate(shifted.examples)]
    with pytest.raises(BiasFileError, match=r"first id without a row: train-3"):
        load_bias(tmp_path / "lp.npy", "mnli", LABELS, shifted)
    (tmp_path / "fake.npy").write_text("not numpy")
    with pytest.raises(BiasFileError, match="cannot be read as a bias file"):
        load_bias(tmp_path / "fake.npy", "mnli", LABELS, _train(3))


def test_missing_and_unknown_bias_files(tmp_path):
    with pytest.raises(BiasFileError, match="bias file not found"):
        load_bias(tmp_path / "x.json", "mnli", LABELS, _train(1))
    (tmp_path / "b.pkl").write_bytes(b"")
    with pytest.raises(BiasFileError, match="is a pickle file and pickles are not loaded by default"):
        load_bias(tmp_path / "b.pkl", "mnli", LABELS, _train(1))
    (tmp_path / "b.txt").write_bytes(b"")
    with pytest.raises(BiasFileError, match="unsupported bias file type"):
        load_bias(tmp_path / "b.txt", "mnli", LABELS, _train(1))
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(BiasFileError, match="not a srnet bias file"):
        load_bias(tmp_path / "c.json", "mnli", LABELS, _train(1))
    (tmp_path / "d.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(BiasFileError, match="not a srnet bias file"):
        load_bias(tmp_path / "d.json", "mnli", LABELS, _train(1))
    (tmp_path / "e.json").write_text(json.dumps({"labels": list(LABELS), "log_probs": {"train-0": ["a", "b", "c"]}}))
    with pytest.raises(BiasFileError, match="entry 'train-0' holds something other than numbers"):
        load_bias(tmp_path / "e.json", "mnli", LABELS, _train(1))
    # what numpy would coerce silently: numbers as strings, bools, nested rows; and a float beyond range
    for row, message in [
        (["-0.1", "-2", "-3"], "other than numbers"),
        ([True, -2, -3], "other than numbers"),
        ([[-0.1], [-2.0], [-3.0]], "other than numbers"),
        ([10**400, -1, -1], "too large"),
        ([-1, -1], "is not a list of 3 values"),
    ]:
        (tmp_path / "f.json").write_text(json.dumps({"labels": list(LABELS), "log_probs": {"train-0": row}}))
        with pytest.raises(BiasFileError, match=message):
            load_bias(tmp_path / "f.json", "mnli", LABELS, _train(1))
    (tmp_path / "g.json").write_text(json.dumps({"labels": {"a": 1}, "log_probs": {"train-0": [-1.0, -1.0, -1.0]}}))
    with pytest.raises(BiasFileError, match="`labels` is not a list of label names"):
        load_bias(tmp_path / "g.json", "mnli", LABELS, _train(1))
    np.save(tmp_path / "h.npy", np.zeros((1, 3), dtype=np.complex64))
    with pytest.raises(BiasFileError, match="expected float"):
        load_bias(tmp_path / "h.npy", "mnli", LABELS, _train(1))


def test_bias_model_recipe_output(bias_file, synth_dir):
    from srnet_cli.engine.data.readers import load_split

    payload = json.loads(bias_file.read_text())
    assert payload["labels"] == list(LABELS)
    assert len(payload["log_probs"]) == 240
    # Clark et al.'s overlap bias: entailment vs non-entailment, the non-entailed mass split evenly, so contradiction
    # and neutral have the same probability on every pair and the three sum to 1
    probs = {key: np.exp(row) for key, row in payload["log_probs"].items()}
    assert all(
        p[0] == pytest.approx(p[2], rel=1e-4) and p.sum() == pytest.approx(1.0, abs=1e-4) for p in probs.values()
    )
    train = load_split("mnli", "train", synth_dir)
    entailed_right = [(probs[e.id][1] > 0.5) == (e.label == "entailment") for e in train.examples]
    assert np.mean(entailed_right) > 2 / 3  # better than calling every pair non-entailed
    full = [e for e in train.examples if overlap_features(e.text_a, e.text_b)[1] == 1.0]
    assert full and np.mean([probs[e.id][1] > 0.5 for e in full]) > 0.9  # the shortcut: full overlap -> entailment
    results = json.loads((bias_file.parent / "results.json").read_text())
    # above chance on the ID dev set, and at chance on HANS (overlap is uninformative there)
    assert results["metrics"]["dev_matched"]["acc"] > 1 / 3
    assert results["metrics"]["hans"]["acc"] == pytest.approx(0.5, abs=0.1)


def test_two_class_mnli_file_expands_to_three_classes(tmp_path):
    # non-entailment 0.8, entailment 0.2 -> contradiction = neutral = 0.4 (log p_non - log 2), entailment 0.2
    np.save(tmp_path / "lp.npy", np.log(np.array([[0.8, 0.2], [0.3, 0.7]])))
    got = np.exp(load_bias(tmp_path / "lp.npy", "mnli", LABELS, _train(2)))
    assert got == pytest.approx(np.array([[0.4, 0.2, 0.4], [0.15, 0.7, 0.15]]), abs=1e-6)
    payload = {"labels": ["non-entailment", "entailment"], "log_probs": {"train-0": [math.log(0.5), math.log(0.5)]}}
    (tmp_path / "two.json").write_text(json.dumps(payload))
    got = np.exp(load_bias(tmp_path / "two.json", "mnli", ("entailment", "neutral", "contradiction"), _train(1)))
    assert got == pytest.approx(np.array([[0.5, 0.25, 0.25]]), abs=1e-6)


def _qqp_train(ids: list[int]) -> Dataset:
    labels = ("not_duplicate", "duplicate")
    ex = [Example(f"train-{pair}", "q1", "q2", labels[i % 2], i) for i, pair in enumerate(ids)]
    return Dataset("qqp-train", "QQP/train.tsv", ex, [], n_rows=len(ex), split="train")


def test_qqp_pickle_keyed_by_pair_id_needs_allow_pickle(tmp_path):
    import pickle

    table = {402: np.log(np.array([0.9, 0.1])), 7: np.log(np.array([0.25, 0.75])), 55: np.log(np.array([0.5, 0.5]))}
    (tmp_path / "log_probs.pkl").write_bytes(pickle.dumps(table))
    train = _qqp_train([7, 402])
    with pytest.raises(BiasFileError, match="pickles are not loaded by default"):
        load_bias(tmp_path / "log_probs.pkl", "qqp", ("not_duplicate", "duplicate"), train)
    got = np.exp(load_bias(tmp_path / "log_probs.pkl", "qqp", ("duplicate", "not_duplicate"), train, True))
    assert got == pytest.approx(np.array([[0.75, 0.25], [0.1, 0.9]]), abs=1e-6)
    with pytest.raises(BiasFileError, match=r"no entry for example id 'train-8' \(1 ids missing\)"):
        load_bias(tmp_path / "log_probs.pkl", "qqp", ("not_duplicate", "duplicate"), _qqp_train([7, 8]), True)


def test_allowed_pickle_still_refuses_arbitrary_objects(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({7: Evil()}))
    with pytest.raises(BiasFileError, match="refusing to load"):
        load_bias(tmp_path / "evil.pkl", "qqp", ("not_duplicate", "duplicate"), _qqp_train([7]), True)


def test_fever_npy_columns_are_supports_refutes_nei(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.save(tmp_path / "log_probs.npy", np.log(probs))
    labels = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
    ex = [Example(f"train-{i}", "claim", "evidence", labels[i], i) for i in range(2)]
    train = Dataset("fever-train", "fever.train.jsonl", ex, [], n_rows=2, split="train")
    got = np.exp(load_bias(tmp_path / "log_probs.npy", "fever", ("NOT ENOUGH INFO", "SUPPORTS", "REFUTES"), train))
    assert got == pytest.approx(probs[:, [2, 0, 1]], abs=1e-6)


# --------------------------------------------------------- Clark et al.'s overlap model, against scikit-learn
def test_clark_features_by_hand():
    from srnet_cli.engine.debias.clark_model import WordVectors, clark_features, tokens

    assert tokens("The doctor didn't see him.") == ["The", "doctor", "did", "n't", "see", "him", "."]
    # p: the doctor near the lawyer saw him . (8 tokens); h: the lawyer saw the doctor . (6 tokens)
    f = clark_features("The doctor near the lawyer saw him.", "The lawyer saw the doctor.", None)
    assert f == pytest.approx([0.0, 1.0, 1.0, np.log(2), 0.0, 0.0, 0.0])
    g = clark_features("A man slept.", "A man slept", None)  # contiguous; len diff 1 -> log(max(1, 1)) = 0
    assert g[:4] == pytest.approx([1.0, 1.0, 1.0, 0.0])
    h = clark_features("A man slept.", "A dog slept here.", None)  # 3 of 5 hypothesis tokens in the premise
    assert h[:4] == pytest.approx([0.0, 0.0, 0.6, 0.0])
    unit = {w: v / np.linalg.norm(v) for w, v in {"a": np.array([1.0, 0]), "dog": np.array([0.6, 0.8]),
                                                  "man": np.array([0.0, 1.0])}.items()}  # fmt: skip
    sims = clark_features("a man", "a dog", WordVectors(unit, "test"))
    # best similarity of each hypothesis word: a -> 1.0 (a), dog -> max(0.6, 0.8) = 0.8; sorted [0.8, 1.0]
    assert sims[4:] == pytest.approx([(0.8 + 1.0) / 2, 0.8, 1.0])


def _vec_file(path, rng):
    from srnet_cli.engine.data import synth_nli

    words = sorted({w for t in synth_nli.TRANSITIVE for w in t} | set(synth_nli.NOUNS_MATCHED) | {"the", "."})
    lines = [f"{len(words)} 8"] + [f"{w} " + " ".join(f"{x:.5f}" for x in rng.normal(size=8)) for w in words]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("vectors", ["none", "vec-file"])
def test_clark_overlap_model_matches_scikit_learn(synth_dir, tmp_path, vectors):
    """Same features, fitted by scikit-learn's liblinear exactly as Clark et al. call it, give the same
    predictions (to 1e-4) as srnet's fit."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.engine.debias.clark_model import BalancedLogisticRegression, clark_matrix, read_vec_file, vocabulary

    train = load_split("mnli", "train", synth_dir)
    word_vectors = None
    if vectors == "vec-file":
        word_vectors = read_vec_file(
            _vec_file(tmp_path / "v.vec", np.random.default_rng(0)), vocabulary(train.examples)
        )
        assert len(word_vectors.vectors) > 10
    x = clark_matrix(train.examples, word_vectors)
    y = np.array([label == "entailment" for label in train.labels], dtype=np.int64)
    ours = np.exp(BalancedLogisticRegression(c=100.0).fit(x, y).log_probs(x))
    reference = sklearn.LogisticRegression(
        solver="liblinear", class_weight="balanced", C=100, tol=1e-12, max_iter=10**5
    )
    theirs = reference.fit(x, y).predict_proba(x)
    assert np.abs(ours - theirs).max() < 1e-4
    assert len(set(np.round(ours[:, 1], 4))) > 2  # not a constant prediction


def test_overlap_bias_file_records_its_features_and_vectors(synth_dir, tmp_path):
    from typer.testing import CliRunner

    from srnet_cli.cli import app

    vec = _vec_file(tmp_path / "v.vec", np.random.default_rng(1))
    args = ["bias-model", "--task", "mnli", "--kind", "overlap", "--data-dir", str(synth_dir), "--json"]
    made = CliRunner().invoke(app, [*args, "--word-vectors", str(vec), "--out", str(tmp_path / "b")])
    assert made.exit_code == 0, made.output
    header = json.loads((tmp_path / "b" / "bias.json").read_text())
    assert header["word_vectors"] == f"fasttext:{vec}" and header["features"][4] == "average_sim"
    missing = CliRunner().invoke(app, [*args, "--word-vectors", str(tmp_path / "no.vec"), "--out", str(tmp_path / "c")])
    assert missing.exit_code == 1 and "word-vector file not found" in missing.output
    wrong = CliRunner().invoke(app, ["bias-model", "--task", "fever", "--kind", "claim-only", "--word-vectors", "none",
                                     "--data-dir", str(synth_dir), "--out", str(tmp_path / "d")])  # fmt: skip
    assert wrong.exit_code == 2 and "--word-vectors has no effect" in wrong.output
