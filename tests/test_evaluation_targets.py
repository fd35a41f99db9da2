"""Targeted evaluation: --sets, --file/--layout, missing OOD sets (listed, or fatal with data.require_ood), rows
read and skipped per set, and progress for long evaluations."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def data(synth_dir, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(synth_dir, copy)
    return copy


def test_evaluate_only_the_sets_asked_for(tiny_bert_dir, synth_dir):
    result = run(
        "evaluate",
        "--model",
        tiny_bert_dir,
        "--task",
        "mnli",
        "--data-dir",
        synth_dir,
        "--sets",
        "dev_mismatched,hans",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out["metrics"]) == ["dev_mismatched", "hans"] and list(out["data"]["sets"]) == list(out["metrics"])
    wrong = run("evaluate", "--model", tiny_bert_dir, "--task", "mnli", "--data-dir", synth_dir, "--sets", "paws_qqp")
    assert wrong.exit_code == 2 and "'paws_qqp' is not a set of mnli; choose from dev_matched" in wrong.stderr


def test_training_commands_take_sets_for_the_final_evaluation(tiny_bert_dir, synth_dir, tmp_path):
    result = run(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--max-steps",
        "2",
        "--sets",
        "hans",
        "--out",
        tmp_path / "run",
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    # the selection set (the first ID split) is always evaluated: it picks the checkpoint
    assert list(json.loads(result.stdout)["metrics"]) == ["dev_matched", "hans"]


def test_a_file_in_a_known_layout(tiny_bert_dir, synth_dir, tmp_path):
    hans = synth_dir / "MNLI" / "hans" / "heuristics_evaluation_set.txt"
    result = run(
        "evaluate", "--model", tiny_bert_dir, "--file", hans, "--layout", "hans", "--json", "--out", tmp_path / "e"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    reference = json.loads(
        run(
            "evaluate", "--model", tiny_bert_dir, "--task", "mnli", "--data-dir", synth_dir, "--sets", "hans", "--json"
        ).stdout
    )
    assert out["metrics"]["file-hans"] == reference["metrics"]["hans"]  # the same breakdown as the task's HANS set
    assert out["data"]["sets"]["file-hans"]["rows"] == 48 and (tmp_path / "e" / "predictions").is_dir()
    dev = synth_dir / "MNLI" / "dev_matched.tsv"
    mnli = json.loads(run("evaluate", "--model", tiny_bert_dir, "--file", dev, "--layout", "mnli", "--json").stdout)
    assert set(mnli["metrics"]["file-mnli"]) == {"acc", "n"}
    for args, message in [
        (["--layout", "hans"], "--layout a --file"),
        (["--file", dev], "--file needs --layout"),
        (["--file", dev, "--layout", "paws", "--task", "mnli"], "--layout paws is a qqp file"),
    ]:
        bad = run("evaluate", "--model", tiny_bert_dir, *args)
        assert bad.exit_code == 2 and message in bad.stderr, bad.output


def test_missing_ood_set_is_listed_and_fatal_on_request(tiny_bert_dir, data, tmp_path):
    (data / "MNLI" / "hans" / "heuristics_evaluation_set.txt").unlink()
    base = ["evaluate", "--model", tiny_bert_dir, "--task", "mnli", "--data-dir", data]
    listed = run(*base, "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["data"]["missing"] == ["hans"]
    table = run(*base)
    assert any(line.split()[1:2] == ["hans"] and "missing" in line for line in table.stdout.splitlines())
    fatal = run(*base, "--set", "data.require_ood=true", "--out", tmp_path / "e")
    assert fatal.exit_code == 1 and "data file not found" in fatal.stderr and "require_ood" in fatal.stderr
    assert not (tmp_path / "e").exists()
    training = run(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        data,
        "--max-steps",
        "1",
        "--out",
        tmp_path / "t",
        "--json",
        "-q",
    )
    assert json.loads(training.stdout)["data"]["missing"] == ["hans"]


def test_results_record_rows_read_and_skipped_per_set(tiny_bert_dir, data):
    dev = data / "MNLI" / "dev_matched.tsv"
    lines = dev.read_text().splitlines()
    lines[3] = "broken row"
    lines[7] = (
        lines[7]
        .replace("\tentailment", "\tmaybe")
        .replace("\tneutral", "\tmaybe")
        .replace("\tcontradiction", "\tmaybe")
    )
    dev.write_text("\n".join(lines) + "\n")
    out = json.loads(run("evaluate", "--model", tiny_bert_dir, "--task", "mnli", "--data-dir", data, "--json").stdout)
    rows = out["data"]["sets"]["dev_matched"]
    assert (rows["rows"], rows["used"], rows["skipped"], rows["first_skipped_lines"]) == (60, 58, 2, [4, 8])


def test_long_evaluations_show_progress_short_ones_stay_quiet(tiny_bert_dir, synth_dir, monkeypatch):
    from srnet_cli.engine.data.batching import encode
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.engine.runs.context import RecordingReporter
    from srnet_cli.engine.training import loop
    from srnet_cli.engine.training.models import load_classifier, load_tokenizer

    model, tokenizer = load_classifier(str(tiny_bert_dir)), load_tokenizer(str(tiny_bert_dir))
    data = encode(load_split("mnli", "dev_matched", synth_dir).examples, tokenizer, 64, {})
    quiet = RecordingReporter()
    loop.predict_logits(model, data, 8, "cpu", quiet, "evaluate dev_matched")
    assert quiet.events == []
    monkeypatch.setattr(loop, "PROGRESS_AFTER_S", -1.0)  # as if every batch were slow
    shown = RecordingReporter()
    loop.predict_logits(model, data, 8, "cpu", shown, "evaluate dev_matched")
    assert shown.events[0] == ("start", (8, "evaluate dev_matched")) and shown.events[-1] == ("end", None)
    assert [kind for kind, _ in shown.events].count("advance") == 8  # 60 pairs in batches of 8


# ------------------------------------------------------------------------------------------ experiment tracking
def test_tensorboard_logs_loss_lr_evaluations_and_the_preset(tiny_bert_dir, synth_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "poe-40"
    result = run(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--max-steps",
        "12",
        "--lr",
        "1e-4",
        "--batch-size",
        "8",
        "--set",
        "eval.every=4",
        "--log-with",
        "tensorboard",
        "--out",
        out,
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(out / "logs" / "poe-40"))  # the run's name is its directory's
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert [step for step, _ in scalars["train/loss"]] == list(range(1, 13))
    # the lr schedule: 10% warm-up (1 step of 12), then linear decay to 0 at step 12
    assert scalars["train/lr"][0][1] == pytest.approx(1e-4) and scalars["train/lr"][-1][1] == pytest.approx(0.0)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert scalars["eval/dev_matched.acc"] == [(x["step"], pytest.approx(x["dev_matched.acc"])) for x in lines]
    final = json.loads(result.stdout)["metrics"]
    assert scalars["final/hans.acc"] == [(12, pytest.approx(final["hans"]["acc"]))]
    assert "eval/dev_matched.n" not in scalars  # counts are not metrics
    hparams = next((out / "logs" / "poe-40").glob("*/hparams.yml")).read_text()
    assert "train.lr: 0.0001" in hparams and "task: mnli" in hparams


def test_tracker_choice_is_checked_before_anything_is_written(tiny_bert_dir, synth_dir, tmp_path):
    import importlib.util

    base = [
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--max-steps",
        "1",
        "--out",
        tmp_path / "run",
    ]
    bad = run(*base, "--log-with", "neptune")
    assert bad.exit_code == 2 and "--log-with 'neptune' is not one of none, tensorboard, wandb, mlflow" in bad.stderr
    for kind in ("wandb", "mlflow"):
        if importlib.util.find_spec(kind) is None:
            missing = run(*base, "--log-with", kind)
            assert missing.exit_code == 2 and f"needs the {kind} package" in missing.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["wandb", "mlflow"])
def test_optional_trackers_write_into_the_run_directory_offline(tiny_bert_dir, synth_dir, tmp_path, kind, monkeypatch):
    pytest.importorskip(kind)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    result = run(
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--max-steps",
        "2",
        "--log-with",
        kind,
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert (out / ("wandb" if kind == "wandb" else "mlruns")).is_dir()


def test_evaluating_a_model_without_a_trained_head_says_what_to_pass(tiny_bert_dir, synth_dir, tmp_path):
    """`srnet evaluate --model minilm` (a sentence encoder, no classifier): refused, with the fine-tune command."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    BertModel(BertConfig.from_pretrained(tiny_bert_dir)).save_pretrained(tmp_path / "encoder")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "encoder")
    result = run("evaluate", "--model", tmp_path / "encoder", "--task", "mnli", "--data-dir", synth_dir)
    assert result.exit_code == 1 and "has no trained classification head" in result.stderr
    assert "srnet finetune --task mnli --model" in result.stderr and "Traceback" not in result.output
