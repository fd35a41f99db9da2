"""QQP/PAWS and FEVER/FEVER-Symmetric: readers on hand-made files in the upstream formats, metrics against hand-computed
values, the built-in paraphrase and fact benchmarks, bias models, and end-to-end runs with every loss."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.data import synth_fact, synth_paraphrase
from srnet_cli.engine.data.readers import load_split, read_fever, read_paws, read_qqp
from srnet_cli.engine.debias.clark_model import bow_matrix, bow_vocabulary, overlap_features
from srnet_cli.engine.evaluation.metrics import f1_score, paraphrase_report, symmetric_report
from srnet_cli.engine.evaluation.predict import set_metrics
from srnet_cli.errors import DataError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------------------ readers
def test_qqp_tsv_ids_labels_and_malformed_rows(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        [
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            '402\t1\t2\tHow do I learn "Python"?\tWhat is the best way to learn Python?\t1',
            "17\t3\t4\tIs Paris big?\tIs Rome big?\t0",
            "18\t5\t6\tonly one question\t0",  # GLUE's QQP train.tsv has rows like this
            "19\t7\t8\tA?\tB?\t2",
        ],
    )
    data = read_qqp(path, "train")
    assert [(e.id, e.label, e.row) for e in data.examples] == [
        ("train-402", "duplicate", 0),
        ("train-17", "not_duplicate", 1),
    ]
    assert data.examples[0].text_a == 'How do I learn "Python"?'
    assert [line for line, _ in data.malformed] == [4, 5] and data.n_rows == 4
    assert "unknown label '2'" in data.malformed[1][1]
    with pytest.raises(DataError, match=r"train.tsv:4: expected 6 tab-separated fields"):
        read_qqp(path, "train", strict=True)


def test_paws_reader_accepts_both_releases_and_bytes_literals(tmp_path):
    root = tmp_path / "QQP"
    write(root / "train.tsv", ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "1\t1\t2\ta\tb\t0"])
    # PAWS-qqp's released file is dev_and_test.tsv; its generator writes Python bytes literals.
    write(
        root / "paws_qqp" / "dev_and_test.tsv",
        ["id\tsentence1\tsentence2\tlabel", "7\tb'Why do cats purr ?'\tb\"Why do purr cats ?\"\t0"],
    )
    write(root / "paws_wiki" / "test.tsv", ["id\tsentence1\tsentence2\tlabel", "1\tA is in B .\tB is in A .\t1"])
    paws = load_split("qqp", "paws_qqp", tmp_path)
    assert paws.split == "paws_qqp" and paws.source.endswith("dev_and_test.tsv")
    assert (paws.examples[0].id, paws.examples[0].text_a, paws.examples[0].text_b, paws.examples[0].label) == (
        "7",
        "Why do cats purr ?",
        "Why do purr cats ?",
        "not_duplicate",
    )
    assert load_split("qqp", "paws_wiki", tmp_path).examples[0].label == "duplicate"
    assert read_paws(root / "paws_wiki" / "test.tsv", "paws_wiki").name == "paws_wiki"


def test_fever_and_symmetric_readers(tmp_path):
    fever = write(
        tmp_path / "fever" / "fever.train.jsonl",
        [
            json.dumps({"claim": "A is B.", "evidence": "A is B indeed.", "gold_label": "SUPPORTS", "weight": 0.3}),
            json.dumps({"claim": "A is C.", "evidence": "A is B.", "label": "REFUTES"}),
            "{broken",
            json.dumps({"claim": "A is D.", "evidence": "A is B.", "gold_label": "MAYBE"}),
            json.dumps({"claim": "A is E.", "evidence": "A was born.", "gold_label": "NOT ENOUGH INFO"}),
        ],
    )
    data = read_fever(fever, "train")
    # ids are `{split}-{line position}`: the row key of the original row-aligned .npy
    assert [(e.id, e.label, e.row) for e in data.examples] == [
        ("train-0", "SUPPORTS", 0),
        ("train-1", "REFUTES", 1),
        ("train-4", "NOT ENOUGH INFO", 4),
    ]
    assert data.n_rows == 5 and [line for line, _ in data.malformed] == [3, 4]
    sym1 = write(
        tmp_path / "fever" / "sym1" / "test.jsonl",
        [json.dumps({"id": 91, "label": "SUPPORTS", "claim": "c", "evidence_sentence": "e"})],
    )
    sym2 = write(
        tmp_path / "fever" / "sym2" / "test.jsonl",
        [
            json.dumps(
                {
                    "id": 5,
                    "claim": "c",
                    "evidence": "e",
                    "sentence1": "c",
                    "sentence2": "e",
                    "gold_label": "REFUTES",
                    "label": "REFUTES",
                    "evid": "x",
                }
            )
        ],
    )
    assert [(e.id, e.text_b, e.label) for e in read_fever(sym1, "fever_sym1", symmetric=True).examples] == [
        ("91", "e", "SUPPORTS")
    ]
    assert load_split("fever", "fever_sym2", tmp_path).examples[0].id == "5" and sym2.is_file()


def test_missing_task_files_name_the_synth_command(tmp_path):
    with pytest.raises(Exception, match="fever.train.jsonl") as info:
        load_split("fever", "train", tmp_path)
    assert "srnet data synth --task fact" in info.value.hint


# ------------------------------------------------------------------------------------------------------ metrics
def test_paraphrase_metrics_by_hand():
    gold = ["duplicate", "duplicate", "duplicate", "not_duplicate", "not_duplicate"]
    pred = ["duplicate", "duplicate", "not_duplicate", "duplicate", "not_duplicate"]
    # duplicate: TP 2, FP 1, FN 1 -> F1 = 4/6; not_duplicate: TP 1, FP 1, FN 1 -> F1 = 2/4
    report = paraphrase_report(pred, gold)
    assert report["acc"] == pytest.approx(3 / 5)
    assert report["f1"] == pytest.approx(2 / 3) and report["non_duplicate_f1"] == pytest.approx(0.5)
    assert report["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)
    assert report["duplicate_acc"] == pytest.approx(2 / 3) and report["non_duplicate_acc"] == pytest.approx(0.5)
    assert f1_score(["a"], ["a"], "b") == 0.0  # no positive anywhere: 0, as sklearn's zero_division=0


def test_symmetric_accuracy_three_way_and_two_way():
    labels = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
    # argmax: NEI (wrong in 3-way, 2-way picks SUPPORTS), REFUTES, SUPPORTS
    logits = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.5], [3.0, 0.0, 0.0]])
    gold = ["SUPPORTS", "REFUTES", "REFUTES"]

    class Data:
        labels = gold

    m = set_metrics("fever", "fever_sym1", logits, labels, Data())
    assert m["acc"] == pytest.approx(1 / 3) and m["acc_2way"] == pytest.approx(2 / 3)
    assert m["nei_predicted"] == pytest.approx(1 / 3) and m["refutes_acc"] == pytest.approx(0.5)
    assert symmetric_report([], [], [])["acc"] is None


# ------------------------------------------------------------------------------------------------------ synth
def _read_fever_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synth_paraphrase_plants_an_overlap_shortcut(tmp_path):
    spec = synth_paraphrase.SynthParaphraseSpec(train_size=800, dev_size=100, challenge_size=200, seed=4)
    synth_paraphrase.write_synth_paraphrase(tmp_path, spec)
    train = load_split("qqp", "train", tmp_path)
    full = [overlap_features(e.text_a, e.text_b)[1] == 1.0 for e in train.examples]
    dup = [e.label == "duplicate" for e in train.examples]
    dup_full = [f for f, d in zip(full, dup, strict=True) if d]
    assert 0.6 < sum(dup_full) / len(dup_full) < 0.8  # 70% of duplicates reuse every word, 30% are rephrased
    non_full = [f for f, d in zip(full, dup, strict=True) if not d]
    assert 0.0 < sum(non_full) / len(non_full) < 0.08  # ~3% counter-examples
    paws = load_split("qqp", "paws_qqp", tmp_path)
    assert all(overlap_features(e.text_a, e.text_b)[1] == 1.0 for e in paws.examples)  # overlap is uninformative
    assert sum(e.label == "duplicate" for e in paws.examples) == 100
    again = tmp_path / "again"
    synth_paraphrase.write_synth_paraphrase(again, spec)
    assert (again / "QQP/train.tsv").read_bytes() == (tmp_path / "QQP/train.tsv").read_bytes()


def test_synth_fact_plants_a_negation_shortcut(tmp_path):
    spec = synth_fact.SynthFactSpec(train_size=900, dev_size=90, challenge_size=200, seed=5)
    counts = synth_fact.write_synth_fact(tmp_path, spec)
    assert counts["fever/sym2/dev.jsonl"] == 100

    def negated(claim: str) -> bool:
        return any(w in claim.split() for w in ("not", "never"))

    train = load_split("fever", "train", tmp_path)
    refutes = [negated(e.text_a) for e in train.examples if e.label == "REFUTES"]
    others = [negated(e.text_a) for e in train.examples if e.label != "REFUTES"]
    assert 0.9 < sum(refutes) / len(refutes) < 1.0 and 0.0 < sum(others) / len(others) < 0.1
    for split in ("fever_sym1", "fever_sym2"):
        sym = load_split("fever", split, tmp_path).examples
        for label in ("SUPPORTS", "REFUTES"):  # negation is uninformative: half of each class
            assert sum(negated(e.text_a) for e in sym if e.label == label) == 50
    assert "evidence_sentence" in _read_fever_jsonl(tmp_path / "fever/sym1/test.jsonl")[0]  # v1 fields
    assert "gold_label" in _read_fever_jsonl(tmp_path / "fever/sym2/test.jsonl")[0]  # v2 fields


# ------------------------------------------------------------------------------------------------------ bias models
def test_bag_of_words_features():
    vocab = bow_vocabulary(["a b", "b c", "b a", "d"], min_count=2)
    assert vocab == {"b": 0, "a": 1}  # most frequent first; "c", "d" seen once
    m = bow_matrix(["a a x", "b"], vocab).to_dense()
    assert m.tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]  # presence, unknown words ignored, intercept column


@pytest.fixture(scope="module")
def fact_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("fact")
    synth_fact.write_synth_fact(path, synth_fact.SynthFactSpec(train_size=240, dev_size=60, challenge_size=40, seed=2))
    return path


@pytest.fixture(scope="module")
def paraphrase_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("paraphrase")
    spec = synth_paraphrase.SynthParaphraseSpec(train_size=240, dev_size=60, challenge_size=40, seed=2)
    synth_paraphrase.write_synth_paraphrase(path, spec)
    return path


def test_claim_only_bias_model_ignores_the_evidence(fact_dir, tmp_path):
    result = invoke(
        "bias-model",
        "--task",
        "fever",
        "--kind",
        "claim-only",
        "--data-dir",
        fact_dir,
        "--out",
        tmp_path / "b",
        "--json",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert set(metrics) == {"train", "dev", "fever_sym1", "fever_sym2"}
    assert metrics["fever_sym1"]["acc_2way"] <= 0.65  # negation alone is near chance on the symmetric set
    table = json.loads((tmp_path / "b" / "bias.json").read_text())
    assert table["labels"] == ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"] and len(table["log_probs"]) == 240
    # Same claim, any evidence: same prediction.
    rows = _read_fever_jsonl(fact_dir / "fever/fever.train.jsonl")
    by_claim: dict[str, list] = {}
    for i, r in enumerate(rows):
        by_claim.setdefault(r["claim"], []).append(table["log_probs"][f"train-{i}"])
    repeated = [v for v in by_claim.values() if len(v) > 1]
    assert repeated and all(np.allclose(v[0], v[-1]) for v in repeated)


def test_hypothesis_only_and_unknown_kinds(synth_dir, tmp_path):
    ok = invoke(
        "bias-model",
        "--task",
        "mnli",
        "--kind",
        "hypothesis-only",
        "--data-dir",
        synth_dir,
        "--out",
        tmp_path / "h",
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    bad = invoke(
        "bias-model", "--task", "qqp", "--kind", "claim-only", "--data-dir", synth_dir, "--out", tmp_path / "x"
    )
    assert bad.exit_code == 2 and "--kind 'claim-only' is not available for qqp" in bad.stderr


# ------------------------------------------------------------------------------------------------------ end to end
STEPS = [
    "--set",
    "train.max_steps=4",
    "--set",
    "eval.every=2",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.warmup_steps=1",
    "--json",
]


def test_qqp_every_loss_and_paws_evaluation(tiny_bert_dir, paraphrase_dir, tmp_path):
    bias = tmp_path / "bias"
    assert invoke("bias-model", "--task", "qqp", "--data-dir", paraphrase_dir, "--out", bias).exit_code == 0
    ce = invoke(
        "finetune",
        "--task",
        "qqp",
        "--loss",
        "ce",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        paraphrase_dir,
        "--out",
        tmp_path / "ce",
        *STEPS,
    )
    assert ce.exit_code == 0, ce.output
    results = json.loads(ce.stdout)
    assert results["selection"] == "dev.f1"  # the preset's metric, as the original (eval_f1)
    assert set(results["metrics"]) == {"dev", "paws_qqp", "paws_wiki"}
    assert {"acc", "f1", "weighted_f1", "duplicate_acc", "non_duplicate_acc"} <= set(results["metrics"]["paws_qqp"])
    config = json.loads((tmp_path / "ce" / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "not_duplicate", "1": "duplicate"}

    teacher = tmp_path / "teacher.json"
    saved = invoke(
        "evaluate",
        "--task",
        "qqp",
        "--model",
        tmp_path / "ce" / "model",
        "--data-dir",
        paraphrase_dir,
        "--split",
        "train",
        "--save-probs",
        teacher,
        "--json",
    )
    assert saved.exit_code == 0, saved.output
    probs = json.loads(teacher.read_text())
    assert probs["format"] == "srnet-probs/1" and len(probs["probs"]) == 240
    assert all(math.isclose(sum(p), 1.0, abs_tol=1e-5) for p in probs["probs"].values())

    for loss, extra in (("poe", []), ("reweight", []), ("conf-reg", ["--teacher", teacher])):
        run = invoke(
            "finetune",
            "--task",
            "qqp",
            "--loss",
            loss,
            "--model",
            tiny_bert_dir,
            "--data-dir",
            paraphrase_dir,
            "--bias",
            bias / "bias.json",
            *extra,
            "--out",
            tmp_path / loss,
            *STEPS,
        )
        assert run.exit_code == 0, (loss, run.output)
        assert json.loads(run.stdout)["loss"] == loss


def test_fever_poe_and_symmetric_evaluation(tiny_bert_dir, fact_dir, tmp_path):
    assert invoke("bias-model", "--task", "fever", "--data-dir", fact_dir, "--out", tmp_path / "b").exit_code == 0
    run = invoke(
        "finetune",
        "--task",
        "fever",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        fact_dir,
        "--bias",
        tmp_path / "b" / "bias.json",
        "--out",
        tmp_path / "poe",
        "--set",
        "loss.anneal=[0.8, 1.0]",
        *STEPS,
    )
    assert run.exit_code == 0, run.output
    evaluated = invoke(
        "evaluate",
        "--task",
        "fever",
        "--model",
        tmp_path / "poe" / "model",
        "--data-dir",
        fact_dir,
        "--json",
        "--out",
        tmp_path / "eval",
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert set(metrics) == {"dev", "fever_sym1", "fever_sym2"}
    assert metrics["fever_sym2"]["n"] == 40 and 0 <= metrics["fever_sym2"]["acc"] <= metrics["fever_sym2"]["acc_2way"]
    assert metrics["dev"]["acc"] == json.loads(run.stdout)["metrics"]["dev"]["acc"]


def test_conf_reg_rejects_a_teacher_with_missing_ids(tiny_bert_dir, fact_dir, tmp_path):
    assert invoke("bias-model", "--task", "fever", "--data-dir", fact_dir, "--out", tmp_path / "b").exit_code == 0
    teacher = tmp_path / "t.json"
    ids = [f"train-{i}" for i in range(239)]  # one short
    teacher.write_text(
        json.dumps(
            {
                "format": "srnet-probs/1",
                "task": "fever",
                "labels": ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"],
                "probs": {i: [0.2, 0.3, 0.5] for i in ids},
            }
        )
    )
    run = invoke(
        "finetune",
        "--task",
        "fever",
        "--loss",
        "conf-reg",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        fact_dir,
        "--bias",
        tmp_path / "b" / "bias.json",
        "--teacher",
        teacher,
        "--out",
        tmp_path / "cr",
    )
    assert run.exit_code == 1 and "has no entry for example id 'train-239' (1 ids missing)" in run.stderr
    assert not (tmp_path / "cr").exists()
    no_teacher = invoke(
        "finetune",
        "--task",
        "fever",
        "--loss",
        "conf-reg",
        "--model",
        tiny_bert_dir,
        "--bias",
        tmp_path / "b" / "bias.json",
        "--out",
        tmp_path / "cr",
    )
    assert no_teacher.exit_code == 2 and "needs teacher probabilities" in no_teacher.stderr


def test_mask_train_with_symmetric_dev_copies(tiny_bert_dir, fact_dir, tmp_path):
    ce = invoke(
        "finetune",
        "--task",
        "fever",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        fact_dir,
        "--out",
        tmp_path / "ce",
        *STEPS,
    )
    assert ce.exit_code == 0, ce.output
    run = invoke(
        "mask-train",
        "--preset",
        "ood-ce-fever",
        "--model",
        tmp_path / "ce" / "model",
        "--data-dir",
        fact_dir,
        "--out",
        tmp_path / "ood",
        *STEPS,
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["data"]["ood_train"] == {"fever_sym2_dev": 20 * 10}  # the preset's x10 copies


def test_hub_rows_for_qqp_map_labels_by_name():
    from srnet_cli.engine.data.readers import dataset_from_hub_rows

    rows = [
        {"question1": "a?", "question2": "b?", "label": 1, "idx": 7},
        {"question1": "c?", "question2": "d?", "label": 0, "idx": 8},
    ]
    data = dataset_from_hub_rows("dev", rows, "qqp")
    assert [(e.id, e.label) for e in data.examples] == [("dev-7", "duplicate"), ("dev-8", "not_duplicate")]
    assert data.split == "dev" and data.name == "qqp-dev"


def _upstream_qqp(root: Path) -> None:
    """A few hand-written rows per file, in the exact released layouts (quirks included)."""
    head = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    second = ("Is rome big?", "How do I get to rome from paris?")
    rows = [
        f"{100 + i}\t{2 * i}\t{2 * i + 1}\tHow do I get from paris to rome?\t{second[i % 2]}\t{i % 2}"
        for i in range(16)
    ]
    write(root / "QQP" / "train.tsv", [head, *rows, "999\t1\t2\tbroken row"])
    write(root / "QQP" / "dev.tsv", [head, *rows[:6]])
    paws = [
        "id\tsentence1\tsentence2\tlabel",
        "1\tb'How do I get from paris to rome ?'\tb'How do I get from rome to paris ?'\t0",
        "2\tb'What is the difference between A and B ?'\tb'What is the difference between B and A ?'\t1",
    ]
    write(root / "QQP" / "paws_qqp" / "dev_and_test.tsv", paws)
    write(root / "QQP" / "paws_wiki" / "test.tsv", [line.replace("b'", "").replace("'", "") for line in paws])


def _upstream_fever(root: Path) -> None:
    labels = ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"]
    train = [
        json.dumps(
            {
                "claim": f"Anna was born in paris {i}.",
                "evidence": "Anna was born in paris.",
                "gold_label": labels[i % 3],
                "weight": 0.5,
            }
        )
        for i in range(12)
    ]
    write(root / "fever" / "fever.train.jsonl", train)
    write(root / "fever" / "fever.dev.jsonl", [line.replace("gold_label", "label") for line in train[:6]])
    write(
        root / "fever" / "sym1" / "test.jsonl",
        [
            json.dumps(
                {
                    "id": 1,
                    "label": "SUPPORTS",
                    "claim": "Anna was born in paris.",
                    "evidence_sentence": "Anna was born in paris.",
                }
            )
        ],
    )
    write(
        root / "fever" / "sym2" / "test.jsonl",
        [
            json.dumps(
                {
                    "id": 7,
                    "claim": "Anna was not born in paris.",
                    "evidence": "Anna was born in paris.",
                    "sentence1": "x",
                    "sentence2": "y",
                    "gold_label": "REFUTES",
                    "label": "REFUTES",
                    "evid": "z",
                }
            )
        ],
    )


@pytest.mark.parametrize("task", ["qqp", "fever"])
def test_finetune_and_evaluate_on_hand_made_upstream_files(task, tiny_bert_dir, tmp_path):
    data = tmp_path / "data"
    (_upstream_qqp if task == "qqp" else _upstream_fever)(data)
    run = invoke(
        "finetune",
        "--task",
        task,
        "--model",
        tiny_bert_dir,
        "--data-dir",
        data,
        "--out",
        tmp_path / "ce",
        "--set",
        "train.max_steps=2",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.warmup_steps=0",
        "--json",
    )
    assert run.exit_code == 0, run.output
    results = json.loads(run.stdout)
    assert (results["data"]["train"], results["data"]["train_malformed"]) == ((16, 1) if task == "qqp" else (12, 0))
    evaluated = invoke("evaluate", "--task", task, "--model", tmp_path / "ce" / "model", "--data-dir", data, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    expected = {"qqp": {"dev": 6, "paws_qqp": 2, "paws_wiki": 2}, "fever": {"dev": 6, "fever_sym1": 1, "fever_sym2": 1}}
    assert {name: m["n"] for name, m in metrics.items()} == expected[task]


def test_regressions_from_review(tmp_path, tiny_bert_dir, synth_dir):
    from srnet_cli.engine.debias.teacher_files import load_teacher

    # A FEVER line that is JSON but not an object is counted, not a crash.
    path = write(tmp_path / "f.jsonl", ["null", json.dumps({"claim": "a", "evidence": "b", "label": "REFUTES"})])
    data = read_fever(path, "train")
    assert data.malformed == [(1, "not a JSON object")] and data.examples[0].id == "train-1"
    # A row-aligned teacher .npy is indexed by row position, whatever the ids (QQP pair ids).
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    np.save(tmp_path / "probs.npy", probs)
    qqp = write(
        tmp_path / "train.tsv",
        [
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            "40\t1\t2\ta\tb\t0",
            "7\t3\t4\tc\td\t1",
            "999\t5\t6\te\tf\t1",
        ],
    )
    got = load_teacher(tmp_path / "probs.npy", "qqp", ("duplicate", "not_duplicate"), read_qqp(qqp, "train"))
    assert np.allclose(got, probs[:, ::-1])
    # --seeds checks every seed directory before the first run.
    (tmp_path / "runs" / "seed-2").mkdir(parents=True)
    (tmp_path / "runs" / "seed-2" / "x").write_text("keep")
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--seeds",
        "1,2",
        "--out",
        tmp_path / "runs",
    )
    assert result.exit_code == 1 and "seed-2 is not empty" in result.stderr
    assert not (tmp_path / "runs" / "seed-1").exists()


def test_paws_bytes_literals_decode_their_escapes(tmp_path):
    from srnet_cli.engine.data.readers import load_split

    root = tmp_path / "QQP"
    (root / "paws_qqp").mkdir(parents=True)
    (root / "train.tsv").write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\ta\tb\t0\n")
    rows = [
        "id\tsentence1\tsentence2\tlabel",
        "1\tb'caf\\xc3\\xa9 au lait'\tb'Tom \\'s cat'\t1",
        "2\tb'unclosed\tplain text\t0",
    ]
    (root / "paws_qqp" / "dev_and_test.tsv").write_text("\n".join(rows) + "\n")
    paws = load_split("qqp", "paws_qqp", tmp_path)
    pairs = [(e.text_a, e.text_b) for e in paws.examples]
    assert pairs == [("café au lait", "Tom 's cat"), ("b'unclosed", "plain text")]


@pytest.mark.parametrize(
    "task,split,rel,line",
    [
        (
            "fever",
            "fever_sym1",
            "symmetric_v0.1/fever_symmetric_generated.jsonl",
            '{"id": 5, "label": "SUPPORTS", "claim": "c", "evidence_sentence": "e"}',
        ),
        (
            "fever",
            "fever_sym2",
            "symmetric_v0.2/fever_symmetric_test.jsonl",
            '{"id": 6, "gold_label": "REFUTES", "claim": "c", "evidence": "e"}',
        ),
        (
            "fever",
            "fever_sym2_dev",
            "fever_symmetric_dev.jsonl",
            '{"id": 7, "gold_label": "REFUTES", "claim": "c", "evidence": "e"}',
        ),
        ("qqp", "paws_qqp", "paws_qqp/output/dev_and_test.tsv", "id\tsentence1\tsentence2\tlabel\n3\ta\tb\t1"),
        ("qqp", "paws_wiki", "paws_wiki_labeled_final/test.tsv", "id\tsentence1\tsentence2\tlabel\n4\ta\tb\t0"),
        (
            "qqp",
            "paws_wiki_train",
            "paws_wiki_labeled_final/final/train.tsv",
            "id\tsentence1\tsentence2\tlabel\n4\ta\tb\t0",
        ),
    ],
)
def test_upstream_release_names_are_found(tmp_path, task, split, rel, line):
    from srnet_cli.engine.data.readers import load_split

    root = tmp_path / {"fever": "fever", "qqp": "QQP"}[task]
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(line + "\n")
    data = load_split(task, split, tmp_path)
    assert data.source.endswith(rel) and len(data.examples) == 1 and data.split == split


def test_strict_mode_hint_names_the_real_switch(tmp_path):
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.errors import DataError

    (tmp_path / "MNLI").mkdir()
    (tmp_path / "MNLI" / "train.tsv").write_text("index\tsentence1\tsentence2\tgold_label\n0\ta\tb\n")
    with pytest.raises(DataError) as err:
        load_split("mnli", "train", tmp_path, strict=True)
    assert "--set data.strict=true" in err.value.hint and "--strict " not in err.value.hint
