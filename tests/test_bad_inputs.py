"""The bad-input catalogue: each case gives one `error:` line naming the problem, a `hint:`, the right exit
code, no traceback, and writes nothing."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app

runner = CliRunner()


@pytest.fixture()
def data(synth_dir, tmp_path):
    """A private copy of the synthetic data that a case may break."""
    copy = tmp_path / "data"
    shutil.copytree(synth_dir, copy)
    return copy


def _bias(tmp_path, bias_file, edit):
    payload = json.loads(bias_file.read_text())
    edit(payload)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(payload))
    return path


def _drop_id(p):
    del p["log_probs"]["train-3"]


def _nan(p):
    p["log_probs"]["train-7"] = [float("nan"), -1.0, -1.0]


def _probs(p):
    p["log_probs"] = {k: [0.2, 0.5, 0.3] for k in p["log_probs"]}


def _other_task(p):
    p["task"] = "qqp"


def _made(path, content: str | bytes | None = None, array=None, directory: bool = False):
    """Create a file (or directory) and return its path, for the cases below."""
    if directory:
        path.mkdir()
    elif array is not None:
        np.save(path, array)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content or "")
    return path


def _header_only(path):
    path.write_text(path.read_text().splitlines()[0] + "\n")


def _drop_column(path):
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    path.write_text("\n".join("\t".join(row[:9] + row[10:]) for row in lines) + "\n")


def assert_clean_failure(result, code: int, message: str, out) -> None:
    """One `error:` line naming the problem, a `hint:`, the exit code, no traceback, nothing written."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert any(line.startswith("hint:") for line in result.stderr.splitlines())
    assert "Traceback" not in result.output
    assert not out.exists()


CASES = [
    # (id, how to break the data dir or flags, extra args, exit code, message)
    (
        "empty train file",
        lambda d, t, b: (d / "MNLI/train.tsv").write_text(""),
        [],
        1,
        "train.tsv is empty (no header row)",
    ),
    ("train without rows", lambda d, t, b: _header_only(d / "MNLI/train.tsv"), [], 1, "has no usable training rows"),
    ("missing column", lambda d, t, b: _drop_column(d / "MNLI/train.tsv"), [], 1, "has no column 'sentence2'"),
    ("missing dev file", lambda d, t, b: (d / "MNLI/dev_matched.tsv").unlink(), [], 1, "data file not found"),
    (
        "HANS missing columns",
        lambda d, t, b: (d / "MNLI/hans/heuristics_evaluation_set.txt").write_text(
            "gold_label\tsentence1\tsentence2\tpairID\nentailment\ta\tb\tex0\n"
        ),
        [],
        1,
        "has no column 'heuristic'",
    ),
    ("bias missing id", None, ["--bias", lambda t, b: _bias(t, b, _drop_id)], 1, "no entry for example id 'train-3'"),
    ("bias NaN", None, ["--bias", lambda t, b: _bias(t, b, _nan)], 1, "non-finite value for example id 'train-7'"),
    ("bias probabilities", None, ["--bias", lambda t, b: _bias(t, b, _probs)], 1, "holds probabilities, not log-prob"),
    ("bias other task", None, ["--bias", lambda t, b: _bias(t, b, _other_task)], 1, "was made for task 'qqp'"),
    (
        "bias not json",
        None,
        ["--bias", lambda t, b: _made(t / "x.json", "{")],
        1,
        "is not a srnet bias file",
    ),  # fmt: skip
    (
        "bias pickle",
        None,
        ["--bias", lambda t, b: _made(t / "x.pkl", b"x")],
        1,
        "is a pickle file and pickles are not loaded by default",
    ),  # fmt: skip
    ("bias missing", None, ["--bias", lambda t, b: t / "none.json"], 1, "bias file not found"),
    (
        "npy wrong shape",
        None,
        ["--bias", lambda t, b: _made(t / "w.npy", array=np.zeros((240, 4)))],
        1,
        "has 4 columns; mnli expects 3",
    ),  # fmt: skip
    ("model without config", None, ["--model", lambda t, b: _made(t / "m", directory=True)], 1, "no config.json"),
    (
        "model without weights",
        None,
        [
            "--model",
            lambda t, b: _made(_made(t / "w", directory=True) / "config.json", '{"model_type": "bert"}').parent,
        ],
        1,
        "cannot load",
    ),  # fmt: skip
    ("invalid model name", None, ["--model", lambda t, b: "a..b"], 1, "neither a local path nor a valid hub name"),
    ("model path missing", None, ["--model", lambda t, b: t / "nowhere" / "model"], 1, "does not exist"),
    (
        "hub name offline",
        None,
        ["--model", lambda t, b: "org-x/uncached-model"],
        1,
        "not in the local Hugging Face cache",
    ),
    ("cuda without gpu", None, ["--device", lambda t, b: "cuda"], 2, "no CUDA device is visible"),
    (
        "strict malformed",
        lambda d, t, b: open(d / "MNLI/train.tsv", "a").write("oops\n"),
        ["--set", lambda t, b: "data.strict=true"],
        1,
        "train.tsv:242: expected 12 tab-separated fields",
    ),  # fmt: skip
    ("zero steps", None, ["--set", lambda t, b: "train.max_steps=0"], 2, "train.max_steps: Input should be greater"),
    ("negative lr", None, ["--set", lambda t, b: "train.lr=-0.1"], 2, "train.lr: Input should be greater than 0"),
    ("unknown loss", None, ["--loss", lambda t, b: "focal"], 2, "no shipped finetune preset named 'focal-mnli'"),
    ("unknown preset key", None, ["--set", lambda t, b: "train.epochz=1"], 2, "train.epochz: Extra inputs"),
    (
        "out is a file",
        None,
        ["--out", lambda t, b: _made(t / "f", "x")],
        1,
        "is a file, not a directory",
    ),
    ("metric of another task", None, ["--set", lambda t, b: "eval.metric=f1"], 2, "eval.metric 'f1' does not exist"),
    (
        "conf-reg without teacher",
        None,
        ["--loss", lambda t, b: "conf-reg", "--bias", lambda t, b: b],
        2,
        "needs teacher probabilities",
    ),  # fmt: skip
    (
        "teacher without conf-reg",
        None,
        ["--teacher", lambda t, b: _made(t / "t.json", "{}")],
        2,
        "--teacher is used by loss conf-reg only",
    ),  # fmt: skip
    (
        "teacher not probabilities",
        None,
        ["--loss", lambda t, b: "conf-reg", "--bias", lambda t, b: b, "--teacher", lambda t, b: b],
        1,
        "is not a srnet teacher file",
    ),  # fmt: skip
    (
        "anneal without bias",
        None,
        ["--set", lambda t, b: "loss.anneal=[0.8, 1.0]"],
        2,
        "loss.anneal anneals bias probabilities",
    ),  # fmt: skip
    (
        "anneal reversed",
        None,
        ["--bias", lambda t, b: b, "--set", lambda t, b: "loss.anneal=[1.0, 0.8]"],
        2,
        "loss.anneal must be [min, max]",
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, data, tmp_path, tiny_bert_dir, bias_file):
    _, breaker, extra, code, message = case
    if breaker:
        breaker(data, tmp_path, bias_file)
    args = {"--model": str(tiny_bert_dir), "--out": str(tmp_path / "run"), "--bias": None}
    for flag, make in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = str(make(tmp_path, bias_file))
    argv = ["finetune", "--task", "mnli", "--data-dir", str(data), "--set", "train.max_steps=1"]
    if "--loss" not in args:
        argv += ["--loss", "poe" if args["--bias"] else "ce"]
    for flag, value in args.items():
        if value is not None:
            argv += [flag, value]
    assert_clean_failure(runner.invoke(app, argv), code, message, tmp_path / "run")


def test_evaluate_model_with_other_labels(tmp_path, synth_dir, tiny_bert_dir):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_bert_dir)
    config.id2label, config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(tmp_path / "m")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "m")
    args = ["evaluate", "--model", tmp_path / "m", "--task", "mnli", "--data-dir", synth_dir, "--out", tmp_path / "e"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 1 and "the model's labels (neg, pos) are not the mnli labels" in result.stderr
    assert not (tmp_path / "e").exists()


def test_missing_ood_set_is_reported_and_skipped(data, tmp_path, tiny_bert_dir):
    (data / "MNLI/hans/heuristics_evaluation_set.txt").unlink()
    result = runner.invoke(
        app, ["evaluate", "--model", str(tiny_bert_dir), "--task", "mnli", "--data-dir", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: OOD set hans skipped" in result.stderr
    assert set(json.loads(result.stdout)["metrics"]) == {"dev_matched", "dev_mismatched"}


def _mask_pt(path, value):
    import torch

    torch.save(value, path)
    return path


def _other_model_mask(t, b):
    import torch

    return _mask_pt(t / "other.pt", {"roberta.encoder.layer.0.attention.self.query.weight": torch.ones(32, 32)})


def _scores_not_mask(t, b):
    import torch

    return _mask_pt(t / "scores.pt", {"bert.pooler.dense.weight": torch.rand(32, 32)})


def _pickled_object(t, b):
    import pickle

    path = t / "evil.pt"
    path.write_bytes(pickle.dumps({"bert.pooler.dense.weight": object()}))
    return path


def _imp_run_dir(t, b):
    import torch

    from srnet_cli.engine.mask_files import MaskFile, save_mask_file

    save_mask_file(
        t / "imp" / "masks" / "level-0.10.safetensors",
        MaskFile({"bert.pooler.dense.weight": torch.ones(32, 32, dtype=torch.bool)}),
    )
    return t / "imp"


SPARSE_CASES = [
    # (id, command, extra args, exit code, message) — retrain and mask-train share the training flags
    ("mask for another model", "retrain", ["--mask", _other_model_mask], 1, "is not a linear layer of this model"),
    ("mask of scores", "retrain", ["--mask", _scores_not_mask], 1, "is not a 0/1 mask"),
    ("mask needs pickle", "retrain", ["--mask", _pickled_object], 1, "holds Python objects, not only tensors"),
    ("mask missing", "retrain", ["--mask", lambda t, b: t / "none.safetensors"], 1, "does not exist"),
    (
        "mask corrupt",
        "retrain",
        ["--mask", lambda t, b: _made(t / "c.safetensors", b"\x08\0\0\0\0\0\0\0{}")],
        1,
        "not a readable safetensors file",
    ),  # fmt: skip
    ("mask unknown format", "retrain", ["--mask", lambda t, b: _made(t / "m.npz", "x")], 1, "unknown mask format"),
    ("sparsity one", "mask-train", ["--sparsity", lambda t, b: "1.0"], 2, "mask.sparsity: Input should be less than 1"),
    (
        "sparsity negative",
        "mask-train",
        ["--sparsity", lambda t, b: "-0.1"],
        2,
        "mask.sparsity: Input should be greater",
    ),
    (
        "unknown init",
        "mask-train",
        ["--init", lambda t, b: "random"],
        2,
        "search.init: Input should be 'hard' or 'soft'",
    ),
    (
        "ood data with poe",
        "mask-train",
        ["--train-with", lambda t, b: "hans", "--loss", lambda t, b: "poe", "--bias", lambda t, b: b],
        2,
        "--loss ce only",
    ),  # fmt: skip
    ("imp run without level", "retrain", ["--mask", _imp_run_dir], 1, "no mask found in"),
    ("imp below first level", "imp", ["--sparsity", lambda t, b: "0.04"], 2, "is below the first level"),
    (
        "imp evaluate a level it never reaches",
        "imp",
        ["--set", lambda t, b: "imp.evaluate_levels=[0.5, 0.55]"],
        2,
        "imp.evaluate_levels [0.55] are not levels of this schedule",
    ),
    ("unknown ood set", "mask-train", ["--train-with", lambda t, b: "paws"], 2, "paws is not OOD data of mnli"),
    ("unknown ood name", "mask-train", ["--train-with", lambda t, b: "mnli"], 2, "train_with.0: Input should be"),
]


@pytest.mark.parametrize("case", SPARSE_CASES, ids=[c[0] for c in SPARSE_CASES])
def test_bad_sparse_input(case, data, tmp_path, tiny_bert_dir, bias_file):
    _, command, extra, code, message = case
    argv = [command, "--task", "mnli", "--data-dir", str(data), "--model", str(tiny_bert_dir), "--out",
            str(tmp_path / "run"), "--set", "train.max_steps=1"]  # fmt: skip
    for flag, make in zip(extra[::2], extra[1::2], strict=True):
        argv += [flag, str(make(tmp_path, bias_file))]
    assert_clean_failure(runner.invoke(app, argv), code, message, tmp_path / "run")


def test_save_probs_needs_the_train_split_and_never_overwrites(tmp_path, synth_dir, tiny_bert_dir):
    base = ["evaluate", "--model", str(tiny_bert_dir), "--task", "mnli", "--data-dir", str(synth_dir)]
    assert_clean_failure(runner.invoke(app, [*base, "--save-probs", str(tmp_path / "t.json")]), 2,
                         "add --split train", tmp_path / "t.json")  # fmt: skip
    existing = tmp_path / "old.json"
    existing.write_text("keep me")
    result = runner.invoke(app, [*base, "--split", "train", "--save-probs", str(existing)])
    assert result.exit_code == 1 and "already exists" in result.stderr and "Traceback" not in result.output
    assert existing.read_text() == "keep me"
