"""--resume after a real SIGKILL: each command is killed at a chosen point (SRNET_FAULT, or from outside while it
hangs at one), resumed, and must end exactly where an uninterrupted run of the same command ends (CPU, one seed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from srnet_cli.cli import app

runner = CliRunner()
FAST = [
    "--set",
    "train.batch_size=8",
    "--set",
    "train.warmup_steps=0",
    "--set",
    "eval.batch_size=16",
    "--device",
    "cpu",
    "--json",
    "-q",
]


def invoke(*args: object) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def killed(args: list, fault: str) -> None:
    """Run the command in a subprocess that SIGKILLs itself at `fault` (ACTION@POINT:N)."""
    env = os.environ | {"SRNET_FAULT": fault}
    proc = subprocess.run(
        [sys.executable, "-m", "srnet_cli", *map(str, args)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def assert_same_run(a: Path, b: Path, results_a: dict, results_b: dict) -> None:
    """Same results (but the time and directory), metrics lines, masks and saved model, bit for bit."""
    drop = {"seconds", "out", "mask"}
    same = {k: v for k, v in results_a.items() if k not in drop}
    assert same == {k: v for k, v in results_b.items() if k not in drop}
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    masks_a = sorted(p.relative_to(a) for p in a.glob("masks/*.safetensors"))
    assert masks_a == sorted(p.relative_to(b) for p in b.glob("masks/*.safetensors"))
    # A finished run drops its resumable state (OUT/resume); the final weights show in the last metrics line, the
    # saved model and masks/last (mask-train).
    assert not (a / "resume").exists() and not (b / "resume").exists()
    for rel in masks_a:
        ta, tb = load_file(a / rel), load_file(b / rel)
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), rel
    if (a / "model").is_dir():
        ma, mb = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
        assert all(torch.equal(ma[k], mb[k]) for k in ma)


@pytest.fixture(scope="module")
def finetune_args(tiny_bert_dir, synth_dir, bias_file):
    return [
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--set",
        "train.max_steps=24",
        "--set",
        "eval.every=6",
        "--set",
        "train.lr=3e-3",
        *FAST,
    ]


@pytest.fixture(scope="module")
def finetune_ref(finetune_args, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "ref"
    return out, invoke(*finetune_args, "--out", out)


def test_finetune_resumes_after_kill_from_outside(finetune_args, finetune_ref, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "hanging"
    env = os.environ | {"SRNET_FAULT": "hang@step:15", "SRNET_FAULT_MARKER": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "srnet_cli", *map(str, finetune_args), "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads((out / "resume" / "state" / "state.json").read_text())["step"] == 12
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    again = runner.invoke(app, [str(a) for a in [*finetune_args, "--out", out]])  # forgot --resume
    assert again.exit_code == 1 and "holds an interrupted run" in again.stderr and "pass --resume" in again.stderr
    assert_same_run(finetune_ref[0], out, finetune_ref[1], invoke(*finetune_args, "--out", out, "--resume"))


@pytest.mark.parametrize(("batch", "state_step"), [(6, 6), (20, 24)])
def test_finetune_resumes_after_kill_mid_evaluation(finetune_args, finetune_ref, tmp_path, batch, state_step):
    """4 batches per evaluation during training: batch 6 is inside the second one; batch 20 is inside the final
    evaluation on every set, after the last state (step 24)."""
    out = tmp_path / "run"
    killed([*finetune_args, "--out", out], f"kill@eval-batch:{batch}")
    assert json.loads((out / "resume" / "state" / "state.json").read_text())["step"] == state_step
    assert_same_run(finetune_ref[0], out, finetune_ref[1], invoke(*finetune_args, "--out", out, "--resume"))


@pytest.fixture(scope="module")
def imp_args(tiny_bert_dir, synth_dir, bias_file):
    return [
        "imp",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--rewind",
        "3",
        "--sparsity",
        "0.5",
        "--set",
        "train.max_steps=30",
        "--set",
        "train.checkpoint_every=4",
        "--set",
        "train.lr=3e-3",
        *FAST,
    ]


@pytest.fixture(scope="module")
def imp_ref(imp_args, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp") / "ref"
    return out, invoke(*imp_args, "--out", out)


@pytest.mark.parametrize(("fault", "state_step"), [("kill@step:9", 8), ("kill@level:5", 12)])
def test_imp_resumes_in_a_later_level(imp_args, imp_ref, tmp_path, fault, state_step):
    """Levels of 3 steps, states every 4 steps and at each level's end: killed inside level 0.30 (state saved
    mid-level at step 8), or as level 0.50 starts (the state saved at the end of level 0.40)."""
    out = tmp_path / "run"
    killed([*imp_args, "--out", out], fault)
    meta = json.loads((out / "resume" / "state" / "state.json").read_text())
    assert meta["step"] == state_step and meta["has_rewind"]  # the step-3 rewind snapshot travels with the state
    assert_same_run(imp_ref[0], out, imp_ref[1], invoke(*imp_args, "--out", out, "--resume"))


def test_mask_train_resumes_after_kill_between_evaluation_and_state(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    args = [
        "mask-train",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--sparsity",
        "0.6",
        "--initial-sparsity",
        "0.2",
        "--set",
        "train.max_steps=16",
        "--set",
        "eval.every=4",
        "--set",
        "train.lr=0.01",
        "--set",
        "search.select_after=0.3",
        *FAST,
    ]
    ref = invoke(*args, "--out", tmp_path / "ref")
    out = tmp_path / "run"
    killed([*args, "--out", out], "kill@evaluated:3")  # metrics line and best mask of step 12 written, no state
    # steps 8 and 12: step 4 comes before selection starts (select_after 0.3 of 16) and is not evaluated
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [8, 12]
    assert json.loads((out / "resume" / "state" / "state.json").read_text())["step"] == 8
    assert_same_run(tmp_path / "ref", out, ref, invoke(*args, "--out", out, "--resume"))


def test_retrain_resumes_after_kill_during_state_write(tiny_bert_dir, synth_dir, imp_ref, tmp_path):
    args = [
        "retrain",
        "--task",
        "mnli",
        "--loss",
        "ce",
        "--model",
        tiny_bert_dir,
        "--mask",
        imp_ref[0],
        "--sparsity",
        "0.3",
        "--data-dir",
        synth_dir,
        "--set",
        "train.max_steps=12",
        "--set",
        "eval.every=4",
        *FAST,
    ]
    ref = invoke(*args, "--out", tmp_path / "ref")
    out = tmp_path / "run"
    killed([*args, "--out", out], "kill@checkpoint-write:2")  # the step-8 state complete in a temp dir, not in place
    [temp] = (out / "resume").glob(".state.tmp-*")  # named by the writing process
    assert (temp / "state.json").is_file()
    assert json.loads((out / "resume" / "state" / "state.json").read_text())["step"] == 4
    assert_same_run(tmp_path / "ref", out, ref, invoke(*args, "--out", out, "--resume"))
    assert not list((out / "resume").glob(".state.tmp*"))


def test_resume_of_a_finished_run_returns_its_results(finetune_args, finetune_ref):
    out, results = finetune_ref
    before = (out / "results.json").stat().st_mtime_ns
    assert invoke(*finetune_args, "--out", out, "--resume") == results
    assert (out / "results.json").stat().st_mtime_ns == before


def test_resume_refuses_what_it_cannot_continue(finetune_args, finetune_ref, tmp_path):
    def fails(*extra: object) -> str:
        result = runner.invoke(app, [str(a) for a in [*finetune_args, *extra]])
        assert result.exit_code != 0 and "Traceback" not in result.output
        return result.output

    assert "holds no run to resume" in fails("--out", tmp_path / "missing", "--resume")
    assert "--resume and --overwrite" in fails("--out", finetune_ref[0], "--resume", "--overwrite")
    assert "train.lr is 0.003" in fails("--out", finetune_ref[0], "--resume", "--set", "train.lr=1e-4")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert "not an srnet run directory" in fails("--out", tmp_path / "other", "--resume")


def test_interrupted_state_writes_leave_the_last_complete_state(tmp_path):
    from srnet_cli.engine.runs import resume

    meta = {"command": "finetune", "step": 1, "processes": 1, "metrics_lines": 0}
    objects = {"optimizer": {}, "scheduler": {}, "stream": {}, "rng": []}
    resume.write_state(tmp_path, {"w": torch.ones(2)}, objects, meta)
    state = resume.state_dir(tmp_path)
    # killed after the old state moved aside, before the new one moved in: the old one is put back
    state.rename(state.with_name(".state.old-123"))
    (state.with_name(".state.tmp-123")).mkdir()  # and a half-written temp state, which is dropped
    assert resume.recover(tmp_path) == state
    loaded = resume.read_state(tmp_path)
    assert loaded is not None and loaded.meta == meta and torch.equal(loaded.tensors["w"], torch.ones(2))
    assert sorted(p.name for p in state.parent.iterdir()) == ["state"]


def test_checkpoint_every_zero_writes_no_state_and_resume_starts_over(finetune_args, finetune_ref, tmp_path):
    out = tmp_path / "run"
    args = [*finetune_args, "--set", "train.checkpoint_every=0", "--out", out]
    killed(args, "kill@evaluated:2")  # two evaluations done, never a state
    assert (out / "metrics.jsonl").is_file() and not (out / "resume").exists()
    # starts again from step 0: the same run as the reference (whose states were written, then dropped at the end)
    assert_same_run(finetune_ref[0], out, finetune_ref[1], invoke(*args, "--resume"))


@pytest.mark.parametrize("command", ["finetune", "mask-train"])
def test_a_learned_mixin_run_resumes_exactly(command, tiny_bert_dir, synth_dir, bias_file, tmp_path):
    """The gate is trained state: a run killed mid-way and resumed ends where an uninterrupted one ends."""
    search = ["--sparsity", "0.5", "--set", "search.select_after=0.3"] if command == "mask-train" else []
    args = [command, "--task", "mnli", "--loss", "learned-mixin-h", "--model", tiny_bert_dir, "--data-dir", synth_dir,
            "--bias", bias_file, "--set", "train.max_steps=16", "--set", "eval.every=4", "--set", "train.lr=0.01",
            *search, *FAST]  # fmt: skip
    ref = invoke(*args, "--out", tmp_path / "ref")
    out = tmp_path / "run"
    killed([*args, "--out", out], "kill@step:10")
    assert json.loads((out / "resume" / "state" / "state.json").read_text())["step"] == 8
    assert "param.srnet_gate.weight" in load_file(out / "resume" / "state" / "tensors.safetensors")
    assert_same_run(tmp_path / "ref", out, ref, invoke(*args, "--out", out, "--resume"))
