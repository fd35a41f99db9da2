"""The bad-input catalogue: each case gives one `error:` line naming the problem, a `hint:`, the right exit
code, no traceback, and writes nothing."""

import json
import os
import shutil
from pathlib import Path

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
    ),
    (
        "bias pickle",
        None,
        ["--bias", lambda t, b: _made(t / "x.pkl", b"x")],
        1,
        "is a pickle file and pickles are not loaded by default",
    ),
    ("bias missing", None, ["--bias", lambda t, b: t / "none.json"], 1, "bias file not found"),
    (
        "npy wrong shape",
        None,
        ["--bias", lambda t, b: _made(t / "w.npy", array=np.zeros((240, 4)))],
        1,
        "has 4 columns; mnli expects 3",
    ),
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
    ),
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
    ),
    ("zero steps", None, ["--set", lambda t, b: "train.max_steps=0"], 2, "train.max_steps: Input should be greater"),
    ("negative lr", None, ["--set", lambda t, b: "train.lr=-0.1"], 2, "train.lr: Input should be greater than 0"),
    ("unknown loss", None, ["--loss", lambda t, b: "rubi"], 2, "unknown loss 'rubi': srnet has ce, poe"),
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
    ),
    (
        "teacher without conf-reg",
        None,
        ["--teacher", lambda t, b: _made(t / "t.json", "{}")],
        2,
        "--teacher is used by loss conf-reg only",
    ),
    (
        "teacher not probabilities",
        None,
        ["--loss", lambda t, b: "conf-reg", "--bias", lambda t, b: b, "--teacher", lambda t, b: b],
        1,
        "is not a srnet teacher file",
    ),
    (
        "anneal without bias",
        None,
        ["--set", lambda t, b: "loss.anneal=[0.8, 1.0]"],
        2,
        "loss.anneal anneals bias probabilities",
    ),
    (
        "anneal reversed",
        None,
        ["--bias", lambda t, b: b, "--set", lambda t, b: "loss.anneal=[1.0, 0.8]"],
        2,
        "loss.anneal must be [min, max]",
    ),
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
    assert "warning: OOD set hans missing, not evaluated" in result.stderr
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

    from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file

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
    ),
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
    ),
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
    argv = [
        command,
        "--task",
        "mnli",
        "--data-dir",
        str(data),
        "--model",
        str(tiny_bert_dir),
        "--out",
        str(tmp_path / "run"),
        "--set",
        "train.max_steps=1",
    ]
    for flag, make in zip(extra[::2], extra[1::2], strict=True):
        argv += [flag, str(make(tmp_path, bias_file))]
    assert_clean_failure(runner.invoke(app, argv), code, message, tmp_path / "run")


def test_save_probs_needs_the_train_split_and_never_overwrites(tmp_path, synth_dir, tiny_bert_dir):
    base = ["evaluate", "--model", str(tiny_bert_dir), "--task", "mnli", "--data-dir", str(synth_dir)]
    assert_clean_failure(
        runner.invoke(app, [*base, "--save-probs", str(tmp_path / "t.json")]),
        2,
        "add --split train",
        tmp_path / "t.json",
    )
    existing = tmp_path / "old.json"
    existing.write_text("keep me")
    result = runner.invoke(app, [*base, "--split", "train", "--save-probs", str(existing)])
    assert result.exit_code == 1 and "already exists" in result.stderr and "Traceback" not in result.output
    assert existing.read_text() == "keep me"


# ------------------------------------------------------------------------------------------------ hostile inputs
# Each case builds its argv from the fixtures in `env` (a private data copy, tmp dir, tiny model, bias file) and
# may break files first; the run directory env.out must not exist afterwards.
DEEP = "[" * 5000 + "]" * 5000  # nested far beyond Python's recursion limit
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


class Env:
    def __init__(self, data, tmp, model, bias, fever):
        self.data, self.tmp, self.model, self.bias, self.fever = data, tmp, model, bias, fever
        self.out = tmp / "run"

    def finetune(self, *extra: object, task: str = "mnli", data=None) -> list[str]:
        argv = [
            "finetune",
            "--task",
            task,
            "--data-dir",
            data or self.data,
            "--model",
            self.model,
            "--out",
            self.out,
            "--set",
            "train.max_steps=1",
            *extra,
        ]
        return [str(a) for a in argv]

    def model_copy(self, name: str) -> Path:
        target = self.tmp / name
        shutil.copytree(self.model, target)
        return target


def _deep_fever_line(env):
    lines = (env.fever / "fever" / "fever.train.jsonl").read_text().splitlines()
    (env.fever / "fever" / "fever.train.jsonl").write_text("\n".join([lines[0], DEEP_OBJECT, *lines[1:]]) + "\n")
    return env.finetune("--set", "data.strict=true", task="fever", data=env.fever)


def _deep_file(env, name, text):
    path = env.tmp / name
    path.write_text(text)
    return path


def _teacher(env, payload: str):
    teacher = _deep_file(env, "teacher.json", payload)
    return env.finetune("--loss", "conf-reg", "--bias", env.bias, "--teacher", teacher)


def _truncated_weights(env):
    model = env.model_copy("trunc")
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    return env.finetune("--model", model)


def _huge_header(env):
    import struct

    model = env.model_copy("huge")
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    return env.finetune("--model", model)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _malicious_bin(env):
    import pickle

    model = env.model_copy("evil")
    (model / "model.safetensors").unlink()
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"bert.pooler.dense.weight": _RunsCode()}))
    return env.finetune("--model", model)


def _deep_config(env):
    model = env.model_copy("deepcfg")
    (model / "config.json").write_text(DEEP)
    return env.finetune("--model", model)


def _bert_weights_roberta_tokenizer(env, roberta):
    model = env.tmp / "mixed"
    model.mkdir()
    for item in env.model.iterdir():
        if item.name in ("config.json", "model.safetensors"):
            shutil.copy(item, model / item.name)
    for item in roberta.iterdir():
        if item.name not in ("config.json", "model.safetensors"):
            shutil.copy(item, model / item.name)
    return env.finetune("--model", model)


def _mask_with_meta(env, meta):
    import torch
    from safetensors.torch import save_file

    path = env.tmp / "bad.safetensors"
    save_file({"bert.pooler.dense.weight": torch.ones(4, dtype=torch.uint8)}, str(path), metadata={"srnet": meta})
    return [
        "retrain",
        "--task",
        "mnli",
        "--data-dir",
        str(env.data),
        "--model",
        str(env.model),
        "--mask",
        str(path),
        "--out",
        str(env.out),
        "--set",
        "train.max_steps=1",
    ]


def _duplicate_ids(env):
    path = env.data / "MNLI" / "train.tsv"
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    first = lines[1].split("\t")
    copy = lines[5].split("\t")
    copy[header.index("index")] = first[header.index("index")]
    lines[5] = "\t".join(copy)
    path.write_text("\n".join(lines) + "\n")
    return env.finetune()


def _deep_results(env):
    run = env.tmp / "runs" / "a"
    run.mkdir(parents=True)
    (run / "results.json").write_text(DEEP)
    (run / "env.json").write_text("{}")
    return ["report", str(env.tmp / "runs"), "--out", str(env.out)]


def _faulty(argv, fault):
    os.environ["SRNET_FAULT"] = fault  # restored by the test's monkeypatch
    return argv


def _export_to(env, target, fault=None):
    import torch

    from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file

    mask = env.tmp / "m.safetensors"
    save_mask_file(mask, MaskFile({"bert.pooler.dense.weight": torch.ones(32, 32, dtype=torch.bool)}))
    return _faulty(["export-mask", str(mask), "--to", str(target)], fault or "")


def _export(mask, *extra):
    return ["export-mask", str(mask), *map(str, extra)]


def _nan_weights_mask(env):
    import torch

    from srnet_cli.engine.sparse.mask_io import MaskFile, save_mask_file

    path = env.tmp / "nan.safetensors"
    weights = {"classifier.weight": torch.full((3, 32), float("nan")), "classifier.bias": torch.zeros(3)}
    save_mask_file(
        path,
        MaskFile(
            {"bert.pooler.dense.weight": torch.ones(32, 32, dtype=torch.bool)},
            weights,
            {"labels": ["contradiction", "entailment", "neutral"]},
        ),
    )
    return [
        "evaluate",
        "--model",
        str(env.model),
        "--task",
        "mnli",
        "--data-dir",
        str(env.data),
        "--mask",
        str(path),
        "--out",
        str(env.out),
    ]


def _surrogate_fever_line(env):
    path = env.fever / "fever" / "fever.train.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(1, '{"claim": "\\ud800 x", "evidence": "b", "gold_label": "SUPPORTS"}')
    path.write_text("\n".join(lines) + "\n")
    return env.finetune("--set", "data.strict=true", task="fever", data=env.fever)


HOSTILE = [
    # (id, argv builder, exit code, message in the error line)
    ("deep FEVER jsonl line", _deep_fever_line, 1, "nested too deeply"),
    (
        "deep --bias",
        lambda e: e.finetune("--loss", "poe", "--bias", _deep_file(e, "b.json", DEEP)),
        1,
        "is not a srnet bias file (JSON nested too deeply",
    ),
    ("deep --teacher", lambda e: _teacher(e, DEEP), 1, "cannot be read as teacher probabilities (JSON nested"),
    ("deep results.json under report", _deep_results, 2, "results.json cannot be read (nested too deeply"),
    ("deep --set", lambda e: e.finetune("--set", f"train.lr={DEEP}"), 2, "--set train.lr: the value is nested too"),
    (
        "deep --preset",
        lambda e: e.finetune("--preset", _deep_file(e, "p.toml", f"v = {DEEP}")),
        2,
        "p.toml: nested too deeply",
    ),
    ("deep config.json", _deep_config, 1, "a JSON file of it is nested too deeply"),
    ("truncated model.safetensors", _truncated_weights, 1, "its model.safetensors is damaged"),
    ("safetensors header of 2^62", _huge_header, 1, "its model.safetensors is damaged (Error while deserializing"),
    ("malicious pytorch_model.bin", _malicious_bin, 1, "holds Python objects, not only tensors"),
    ("mask metadata a list", lambda e: _mask_with_meta(e, "[1, 2]"), 1, "its srnet metadata is a list, not an object"),
    (
        "mask shapes a list",
        lambda e: _mask_with_meta(e, '{"format": "srnet-mask/1", "shapes": [[32, 32]]}'),
        1,
        "its recorded shapes are a list",
    ),
    (
        "mask shapes of strings",
        lambda e: _mask_with_meta(e, '{"format": "srnet-mask/1", "shapes": {"bert.pooler.dense.weight": ["a"]}}'),
        1,
        "the recorded shape of bert.pooler.dense.weight is not a list of sizes",
    ),
    ("mask labels not names", lambda e: _mask_with_meta(e, '{"labels": 3}'), 1, "recorded labels are not a list"),
    ("mask metadata nested", lambda e: _mask_with_meta(e, DEEP), 1, "srnet metadata is not valid JSON (nested"),
    (
        "export-mask onto a directory",
        lambda e: _export_to(e, _made(e.tmp / "dir", directory=True)),
        1,
        "dir is a directory",
    ),
    (
        "export-mask onto a read-only disk",
        lambda e: _export_to(e, e.tmp / "x.safetensors", "erofs@write-x.safetensors"),
        1,
        "cannot write",
    ),
    (
        "export-mask onto a full disk",
        lambda e: _export_to(e, e.tmp / "x.safetensors", "enospc@write-x.safetensors"),
        1,
        "no space left on device while writing",
    ),
    ("seed above 32 bits", lambda e: e.finetune("--seed", "4294967296"), 2, "train.seed: Input should be less than"),
    ("seeds with one above 32 bits", lambda e: e.finetune("--seeds", "1,4294967296"), 2, "seed 4294967296 is above"),
    ("empty --seeds", lambda e: e.finetune("--seeds", ""), 2, "--seeds '' lists no seed"),
    ("seeds not integers", lambda e: e.finetune("--seeds", "1,b"), 2, "is not a list of integers"),
    ("duplicate example ids", _duplicate_ids, 1, "example id 'train-0' appears twice (lines 2 and 6)"),
    (
        "bool for an int",
        lambda e: e.finetune("--set", "train.max_steps=true"),
        2,
        "train.max_steps: Input should be a valid integer (got True)",
    ),
    ("bool for a float", lambda e: e.finetune("--set", "train.lr=true"), 2, "train.lr: Input should be a valid number"),
    ("string for a bool", lambda e: e.finetune("--set", 'data.strict="yes"'), 2, "data.strict: Input should be"),
    ("key below a value", lambda e: e.finetune("--set", "train.lr.x=1"), 2, "train.lr.x: 'lr' is a value"),
    (
        "sparsity not a number",
        lambda e: ["mask-train", "--task", "mnli", "--sparsity", "abc"],
        2,
        "Invalid value for '--sparsity'",
    ),
    (
        "synth train size 2",
        lambda e: ["data", "synth", "--train-size", "2", "--out", str(e.out)],
        2,
        "Invalid value for '--train-size'",
    ),
    ("unknown command", lambda e: ["finetun", "--task", "mnli"], 2, "No such command 'finetun'"),
    ("unknown option", lambda e: e.finetune("--epochz", "3"), 2, "No such option: --epochz"),
    ("run directory on a read-only disk", lambda e: _faulty(e.finetune(), "erofs@write-.srnet-run"), 1, "cannot write"),
    (
        "run directory on a full disk",
        lambda e: _faulty(e.finetune(), "enospc@write-preset.toml"),
        1,
        "no space left on device while writing",
    ),
    ("tokenizer larger than the embedding table", None, 1, "produces token id"),
    # found by a hostile-user pass over the CLI
    (
        "mask.pt keyed by numbers",
        lambda e: _export(_mask_pt(e.tmp / "k.pt", {1: __import__("torch").ones(3)})),
        1,
        "does not hold a dict of mask tensors by weight name",
    ),
    ("mask with NaN stored weights", _nan_weights_mask, 1, "is not finite (NaN or inf)"),
    ("FEVER line with a lone surrogate", _surrogate_fever_line, 1, "not valid Unicode"),
    (
        "--format without --to",
        lambda e: _export(_export_to(e, e.tmp / "unused")[1], "--format", "bool"),
        2,
        "--format says how to write --to FILE",
    ),
    (
        "export --sparsity of a mask file",
        lambda e: _export(_export_to(e, e.tmp / "u")[1], "--sparsity", "0.3"),
        2,
        "--sparsity picks an IMP level inside a run directory",
    ),
    ("bias with loss ce", lambda e: e.finetune("--loss", "ce", "--bias", e.bias), 2, "loss 'ce' uses no bias file"),
    (
        "initial sparsity above final",
        lambda e: ["mask-train", "--task", "mnli", "--sparsity", "0.3", "--initial-sparsity", "0.8", "--dry-run"],
        2,
        "initial_sparsity 0.8 is above the final sparsity 0.3",
    ),
    ("loss in capitals", lambda e: e.finetune("--loss", "CE"), 2, "unknown loss 'CE'"),
    ("set key with an empty part", lambda e: e.finetune("--set", ".lr=3"), 2, "is not of the form dotted.key"),
    (
        "out below a file",
        lambda e: e.finetune("--out", _made(e.tmp / "afile", "x") / "sub"),
        1,
        "afile is a file, not a directory",
    ),
    (
        "dry run with repeated seeds",
        lambda e: ["finetune", "--task", "mnli", "--seeds", "1,1", "--dry-run"],
        2,
        "needs distinct non-negative seeds",
    ),
    (
        "synth beyond its size bound",
        lambda e: ["data", "synth", "--train-size", "99999999999", "--out", str(e.out)],
        2,
        "Invalid value for '--train-size'",
    ),
]


@pytest.fixture(scope="module")
def fever_dir(tmp_path_factory):
    from srnet_cli.engine.data import synth_fact

    path = tmp_path_factory.mktemp("fever")
    synth_fact.write_synth_fact(path, synth_fact.SynthFactSpec(train_size=60, dev_size=20, challenge_size=8, seed=2))
    return path


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input(case, data, tmp_path, tiny_bert_dir, tiny_roberta_dir, bias_file, fever_dir, monkeypatch):
    _, build, code, message = case
    fever = tmp_path / "fever"
    shutil.copytree(fever_dir, fever)
    env = Env(data, tmp_path, tiny_bert_dir, bias_file, fever)
    monkeypatch.setenv("SRNET_FAULT", "")
    monkeypatch.chdir(tmp_path)
    argv = _bert_weights_roberta_tokenizer(env, tiny_roberta_dir) if build is None else build(env)
    assert_clean_failure(runner.invoke(app, argv), code, message, env.out)
    assert not (tmp_path / "PWNED").exists()
    assert not list(tmp_path.rglob(".*.tmp")) and not list(tmp_path.rglob(".*.tmp-*"))
    assert not list(tmp_path.rglob(".srnet-lock"))  # not even in directories that existed before
