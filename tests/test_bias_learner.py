"""Learned bias models (`bias-model --kind shallow | weak-learner`): fold bookkeeping, determinism, the file in
every debiasing loss, and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.debias.folds import assign_folds, plan_folds
from srnet_cli.errors import UsageError

runner = CliRunner()
FAST = ["--max-steps", "2", "--batch-size", "8", "--warmup", "0"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_assign_folds_partitions_evenly_and_depends_on_the_seed_only():
    fold_of = assign_folds(10, 3, seed=7)
    assert sorted(fold_of.count(k) for k in range(3)) == [3, 3, 4]
    assert assign_folds(10, 3, seed=7) == fold_of and assign_folds(10, 3, seed=8) != fold_of


@pytest.mark.parametrize("subset", [None, 4])
def test_plan_folds_predicts_every_example_once_by_a_model_that_did_not_train_on_it(subset):
    plan = plan_folds(12, subset, 3, seed=1)
    predicted = sorted(i for part in plan.predicts for i in part)
    assert predicted == list(range(12))
    for trains_on, predicts in zip(plan.trains_on, plan.predicts, strict=True):
        assert not set(trains_on) & set(predicts)
        assert len(trains_on) == (subset or 12 - len(predicts))
    assert plan.seen_by_own_model() == 0


def test_plan_without_folds_counts_the_in_sample_predictions():
    plan = plan_folds(10, 4, None, seed=1)
    assert plan.predicts == [list(range(10))] and len(plan.trains_on[0]) == 4
    assert plan.seen_by_own_model() == 4
    assert plan_folds(10, 4, None, seed=1) == plan


@pytest.mark.parametrize(
    ("n", "subset", "folds", "message"),
    [
        (10, 11, None, "--subset 11 is larger than the training data: 10"),
        (10, 8, 2, "larger than the other folds"),
        (10, None, 1, "at least 2 folds"),
        (3, None, 4, "more than the 3 training examples"),
    ],
)
def test_plan_folds_refuses_impossible_requests(n, subset, folds, message):
    with pytest.raises(UsageError, match=message):
        plan_folds(n, subset, folds, seed=1)


def _shallow(tiny_bert_dir, synth_dir, out, *extra):
    return invoke(
        "bias-model", "--task", "mnli", "--kind", "shallow", "--model", tiny_bert_dir, "--data-dir", synth_dir,
        "--subset", "40", *FAST, "--out", out, "--json", *extra,
    )  # fmt: skip


def test_shallow_folds_write_out_of_fold_predictions_deterministically(tiny_bert_dir, synth_dir, tmp_path):
    result = _shallow(tiny_bert_dir, synth_dir, tmp_path / "a", "--folds", "3")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["seen_by_own_model"] == 0 and [m["trained_on"] for m in results["models"]] == [40, 40, 40]
    bias = json.loads((tmp_path / "a" / "bias.json").read_text())
    from srnet_cli.engine.data.readers import load_split

    ids = [e.id for e in load_split("mnli", "train", synth_dir).examples]
    assert sorted(bias["log_probs"]) == sorted(ids)  # every training id exactly once
    # which model predicted an id: the fold whose model did not list it among its training ids
    trained = [set((tmp_path / "a" / "train-ids" / f"fold-{k}.txt").read_text().split()) for k in range(3)]
    predicted = sum(m["predicts"] for m in results["models"])
    assert predicted == len(ids) and all(len(t) == 40 for t in trained)
    again = _shallow(tiny_bert_dir, synth_dir, tmp_path / "b", "--folds", "3")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "b" / "bias.json").read_text()) == bias
    assert {"train", "dev_matched", "hans"} <= set(results["metrics"])


def test_fold_models_trained_only_on_their_listed_ids(tiny_bert_dir, synth_dir, tmp_path):
    """Each fold's id list excludes exactly the ids its model predicts; the finetune run read that list."""
    result = _shallow(tiny_bert_dir, synth_dir, tmp_path / "a", "--folds", "2")
    assert result.exit_code == 0, result.output
    from srnet_cli.engine.data.readers import load_split

    ids = [e.id for e in load_split("mnli", "train", synth_dir).examples]
    fold_of = assign_folds(len(ids), 2, seed=1)
    for k in range(2):
        listed = set((tmp_path / "a" / "train-ids" / f"fold-{k}.txt").read_text().split())
        assert not listed & {i for i, f in zip(ids, fold_of, strict=True) if f == k}
        preset = (tmp_path / "a" / f"fold-{k}" / "preset.toml").read_text()
        assert f"fold-{k}.txt" in preset and 'kind = "ce"' in preset


def test_without_folds_the_output_says_how_many_examples_the_model_saw(tiny_bert_dir, synth_dir, tmp_path):
    result = _shallow(tiny_bert_dir, synth_dir, tmp_path / "a", "--folds", "1")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["seen_by_own_model"] == 40 and results["training_examples"] == 240
    assert {"train_seen", "train_unseen"} <= set(results["metrics"])
    table = _shallow(tiny_bert_dir, synth_dir, tmp_path / "b", "--folds", "1")
    assert table.exit_code == 0
    text = invoke(
        "bias-model", "--task", "mnli", "--kind", "shallow", "--model", tiny_bert_dir, "--data-dir", synth_dir,
        "--subset", "40", "--folds", "1", *FAST, "--out", tmp_path / "c",
    ).stdout  # fmt: skip
    assert "40 of 240 training examples were predicted by a model that trained on them" in text


def test_the_learned_bias_file_loads_into_every_debiasing_loss(tiny_bert_dir, synth_dir, tmp_path):
    made = invoke(
        "bias-model", "--task", "mnli", "--kind", "weak-learner", "--layers", "1", "--model", tiny_bert_dir,
        "--data-dir", synth_dir, *FAST, "--out", tmp_path / "weak", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads((tmp_path / "weak" / "weak-learner-model" / "config.json").read_text())["num_hidden_layers"] == 1
    teacher = tmp_path / "teacher.json"
    for loss in ("poe", "reweight", "conf-reg"):
        extra = ["--teacher", teacher] if loss == "conf-reg" else []
        if loss == "conf-reg":
            saved = invoke(
                "evaluate", "--model", tmp_path / "weak" / "model" / "model", "--task", "mnli", "--data-dir",
                synth_dir, "--split", "train", "--save-probs", teacher,
            )  # fmt: skip
            assert saved.exit_code == 0, saved.output
        run = invoke(
            "finetune", "--task", "mnli", "--loss", loss, "--model", tiny_bert_dir, "--data-dir", synth_dir,
            "--bias", tmp_path / "weak" / "bias.json", *extra, *FAST, "--out", tmp_path / loss, "--json",
        )  # fmt: skip
        assert run.exit_code == 0, run.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "shallow", "--subset", "5000"], "--subset 5000 is larger than the other folds of fold 0 (2 folds)"),
        (["--kind", "shallow", "--folds", "0"], "learner.folds"),
        (["--kind", "overlap", "--folds", "3"], "--kind overlap is a lexical model"),
        (["--kind", "weak-learner", "--layers", "2"], "keeps all 2 layers"),
    ],
)
def test_bad_learner_input_is_a_one_line_error(tiny_bert_dir, synth_dir, tmp_path, args, message):
    result = invoke(
        "bias-model", "--task", "mnli", "--model", tiny_bert_dir, "--data-dir", synth_dir, *args, *FAST, "--out",
        tmp_path / "x",
    )  # fmt: skip
    assert result.exit_code in (1, 2) and message in result.stderr, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_shallow_model_is_out_of_fold_by_default_and_its_subset_follows_the_data(tiny_bert_dir, synth_dir, tmp_path):
    """Unset: 2 folds, each model trained on max(subset_floor, subset_fraction x n) examples of the other half."""
    from srnet_cli.config.schema import BiasModelPreset
    from srnet_cli.recipes.bias_learner import default_folds, subset_size

    result = invoke(
        "bias-model", "--task", "mnli", "--kind", "shallow", "--model", tiny_bert_dir, "--data-dir", synth_dir,
        "--set", "learner.subset_floor=30", *FAST, "--json", "--out", tmp_path / "a",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["folds"] == 2 and results["seen_by_own_model"] == 0
    assert [m["trained_on"] for m in results["models"]] == [30, 30]  # 0.5% of 240 is 1: the floor
    shallow = BiasModelPreset(kind="shallow")
    assert subset_size(shallow, 392_702, default_folds(shallow)) == 1964  # MNLI: Utama et al.'s ~2,000
    assert subset_size(shallow, 8000, 2) == 200  # a small data set: the floor, not 25% of it
    assert subset_size(shallow, 300, 2) == 150  # never more than the other fold holds
    weak = BiasModelPreset(kind="weak-learner")
    assert default_folds(weak) is None and subset_size(weak, 8000, None) is None
