"""Reliability under hostile conditions: one writer per run directory (real processes), SIGTERM and SIGINT, a full
disk (injected, and a real tmpfs where one can be mounted), tampered resume states, unexpected exceptions, a UTF-8
byte-order mark, and the original IMP checkpoint's trained weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
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


@pytest.fixture(scope="module")
def args(tiny_bert_dir, synth_dir):
    return [
        str(a)
        for a in [
            "finetune",
            "--task",
            "mnli",
            "--loss",
            "ce",
            "--model",
            tiny_bert_dir,
            "--data-dir",
            synth_dir,
            "--set",
            "train.max_steps=24",
            "--set",
            "eval.every=6",
            "--set",
            "train.lr=3e-3",
            *FAST,
        ]
    ]


@pytest.fixture(scope="module")
def reference(args, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def same_results(a: dict, b: dict) -> bool:
    drop = {"seconds", "out"}
    return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob(".*") if ".tmp" in p.name or ".old" in p.name]


def _default_signals() -> None:
    # A shell that runs commands in the background (CI) starts them with SIGINT ignored, and Python then installs no
    # Ctrl-C handler: the child gets the default disposition back, as in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "srnet_cli", *argv],
        env=os.environ | env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "the run never reached the hang point"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------ one writer per OUT
def test_a_second_run_or_resume_into_a_busy_out_is_refused_at_once(args, reference, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "hanging"
    first = start([*args, "--out", str(out)], SRNET_FAULT="hang@step:15", SRNET_FAULT_MARKER=str(marker))
    try:
        wait_for(marker, first)  # holds the lock, with a state from step 12
        for extra in ([], ["--resume"], ["--overwrite"]):
            began = time.time()
            second = subprocess.run(
                [sys.executable, "-m", "srnet_cli", *args, "--out", str(out), *extra],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert second.returncode == 1, second.stderr
            assert error_lines(second.stderr) == [f"error: --out {out} is in use by process {first.pid}"]
            assert "Traceback" not in second.stderr and time.time() - began < 60
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.kill()
        first.communicate()
    # the kernel dropped the killed process's lock: the run resumes and ends as an uninterrupted one
    resumed = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert same_results(reference[1], json.loads(resumed.stdout))
    assert (out / "metrics.jsonl").read_text() == (reference[0] / "metrics.jsonl").read_text()


def test_two_identical_runs_started_together_one_runs_one_is_refused(args, tmp_path):
    out = tmp_path / "run"
    procs = [start([*args, "--out", str(out), "--set", "train.max_steps=6"]) for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    refused = next(err for (_, err), p in zip(outputs, procs, strict=True) if p.returncode == 1)
    assert "is in use by process" in refused or "is not empty" in refused, refused
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # one writer: no interleaved lines


def test_seeds_lock_the_parent_and_each_seed_directory(args, tmp_path):
    from srnet_cli.engine.runs.lock import lock_run_dir, release_locks

    out = tmp_path / "seeds"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from srnet_cli.engine.runs.lock import lock_run_dir; "
            f"lock_run_dir(Path({str(out / 'seed-2')!r})); print('locked', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, [*args, "--out", str(out), "--seeds", "1,2"])
        assert result.exit_code == 1 and f"seed-2 is in use by process {holder.pid}" in result.stderr
        assert not (out / "seed-1").exists()  # refused before seed 1 ran
    finally:
        holder.kill()
        holder.communicate()
    lock_run_dir(out)  # and in this process the parent stays lockable after the refusal released everything
    release_locks(failed=True)


# ------------------------------------------------------------------------------------------------- signals
@pytest.mark.parametrize("sig,code,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signal_stops_the_run_resumably(args, reference, tmp_path, sig, code, name):
    out, marker = tmp_path / "run", tmp_path / "hanging"
    proc = start([*args, "--out", str(out)], SRNET_FAULT="hang@step:15", SRNET_FAULT_MARKER=str(marker))
    wait_for(marker, proc)
    began = time.time()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert time.time() - began < 30
    assert error_lines(stderr) == [f"error: interrupted by {name}" + (" (SIGINT)" if sig == signal.SIGINT else "")]
    assert "--resume" in stderr and "Traceback" not in stderr
    assert no_temp_files(out)
    resumed = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert same_results(reference[1], json.loads(resumed.stdout))


# ---------------------------------------------------------------------------------------------- a full disk
@pytest.mark.parametrize(
    "fault",
    ["enospc@checkpoint-write:2", "enospc@model-write:1", "enospc@write-results.json", "enospc@write-metrics.jsonl"],
)
def test_a_full_disk_keeps_the_last_state_and_resume_finishes_the_run(args, reference, tmp_path, monkeypatch, fault):
    out = tmp_path / "run"
    monkeypatch.setenv("SRNET_FAULT", fault)
    failed = runner.invoke(app, [*args, "--out", str(out)])
    assert failed.exit_code == 1, failed.output
    [line] = error_lines(failed.stderr)
    assert line.startswith("error: no space left on device while writing ") and str(out) in line
    assert "--resume" in failed.stderr and "Traceback" not in failed.output
    assert no_temp_files(out)
    monkeypatch.setenv("SRNET_FAULT", "")  # space freed
    resumed = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert same_results(reference[1], json.loads(resumed.stdout))
    assert (out / "metrics.jsonl").read_text() == (reference[0] / "metrics.jsonl").read_text()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_then_resume_after_space_is_freed(args, reference, tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "700k"):  # the model (110 KB) and one state (350 KB) fit; a second state does not
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        out = disk / "run"
        full = subprocess.run(
            [sys.executable, "-m", "srnet_cli", *args, "--out", str(out)], capture_output=True, text=True, timeout=180
        )
        assert full.returncode == 1, full.stderr
        assert error_lines(full.stderr)[0].startswith("error: no space left on device while writing")
        assert "Traceback" not in full.stderr and no_temp_files(out)
        assert (out / "resume" / "state" / "state.json").is_file()  # the previous state is intact
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        resumed = runner.invoke(app, [*args, "--out", str(out), "--resume"])
        assert resumed.exit_code == 0, resumed.output
        assert same_results(reference[1], json.loads(resumed.stdout))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ------------------------------------------------------------------------------------ tampered resume states
def _break_state_json(out: Path) -> None:
    (out / "resume" / "state" / "state.json").write_text('{"step": ')


def _truncate_tensors(out: Path) -> None:
    path = out / "resume" / "state" / "tensors.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def _objects_not_tensors(out: Path) -> None:
    import pickle

    (out / "resume" / "state" / "objects.pt").write_bytes(pickle.dumps({"optimizer": object()}))


def _objects_a_list(out: Path) -> None:
    torch.save([1, 2, 3], out / "resume" / "state" / "objects.pt")


def _break_preset(out: Path) -> None:
    (out / "preset.toml").write_text("[train\nlr = ")


def _state_json_a_list(out: Path) -> None:
    (out / "resume" / "state" / "state.json").write_text("[1, 2]")


@pytest.mark.parametrize(
    "tamper,message",
    [
        (_break_state_json, "the saved state in"),
        (_state_json_a_list, "state.json lacks command"),
        (_truncate_tensors, "(tensors.safetensors:"),
        (_objects_not_tensors, "objects.pt cannot be read safely"),
        (_objects_a_list, "objects.pt does not hold optimizer"),
        (_break_preset, "preset.toml is damaged"),
    ],
)
def test_a_tampered_resume_directory_is_named_and_left_as_it_is(args, tmp_path, monkeypatch, tamper, message):
    out = tmp_path / "run"
    monkeypatch.setenv("SRNET_FAULT", "enospc@write-results.json")  # stops after the last state: a resumable run
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 1
    monkeypatch.setenv("SRNET_FAULT", "")
    tamper(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".srnet-lock"}
    result = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    assert result.exit_code == 1, result.output
    [line] = error_lines(result.stderr)
    assert message in line and "Traceback" not in result.output
    assert "hint:" in result.stderr
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".srnet-lock"}


# ------------------------------------------------------------------------------------- unexpected exceptions
def test_an_unexpected_exception_is_one_line_naming_the_file_and_debug_shows_the_traceback(args, tmp_path, monkeypatch):
    from srnet_cli.engine.data import readers

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(readers, "_read", broken)
    out = tmp_path / "run"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert line.startswith("error: unexpected ZeroDivisionError while reading ") and "train.tsv" in line
    assert "SRNET_DEBUG=1" in result.stderr and "Traceback" not in result.output
    assert not out.exists()  # the lock's directory went with the failure
    monkeypatch.setenv("SRNET_DEBUG", "1")
    debug = runner.invoke(app, [*args, "--out", str(out)])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr


# ------------------------------------------------------------------------------------------------ data files
def test_a_tsv_with_a_utf8_byte_order_mark_reads_like_one_without(synth_dir, tmp_path):
    from srnet_cli.engine.data.readers import load_split

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    train = data / "MNLI" / "train.tsv"
    train.write_bytes(b"\xef\xbb\xbf" + train.read_bytes())
    with_bom, plain = load_split("mnli", "train", data), load_split("mnli", "train", synth_dir)
    assert with_bom.examples == plain.examples and not with_bom.malformed


# --------------------------------------------------------------------------- the original IMP's weight_orig
def test_original_imp_checkpoint_warns_about_its_trained_weights_and_can_use_them(tiny_bert_dir, synth_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    state = {}
    torch.manual_seed(5)
    for name, param in model.named_parameters():
        if name.endswith(".weight") and param.ndim == 2 and "encoder" in name:
            state[f"{name}_orig"] = param.detach() + 0.5 * torch.randn_like(param)  # trained weights differ
            state[f"{name}_mask"] = (torch.rand_like(param) > 0.3).float()
        else:
            state[name] = param.detach()
    torch.save(state, tmp_path / "pytorch_model.bin")
    base = [
        "evaluate",
        "--model",
        str(tiny_bert_dir),
        "--task",
        "mnli",
        "--data-dir",
        str(synth_dir),
        "--mask",
        str(tmp_path / "pytorch_model.bin"),
        "--json",
        "--device",
        "cpu",
    ]
    plain = runner.invoke(app, base)
    assert plain.exit_code == 0, plain.output
    assert "holds trained weights (weight_orig) of 12 layers" in plain.stderr and "--use-mask-weights" in plain.stderr
    used = runner.invoke(app, [*base, "--use-mask-weights"])
    assert used.exit_code == 0, used.output
    assert "using the trained weights (weight_orig) of 12 layers" in used.stderr
    # an independent check of what "using them" means: the masked trained weights in a plain model
    for name, param in model.named_parameters():
        if f"{name}_orig" in state:
            param.data = state[f"{name}_orig"] * state[f"{name}_mask"]
    from srnet_cli.engine.data.readers import load_split
    from srnet_cli.engine.data.tasks import task_spec
    from srnet_cli.engine.evaluation.predict import encode_sets, evaluate_sets
    from srnet_cli.engine.training.models import load_tokenizer

    dev = load_split("mnli", "dev_matched", synth_dir)
    labels = task_spec("mnli").labels  # the tiny model's heads are unnamed: evaluate assumes the task's order
    sets = encode_sets([dev], load_tokenizer(str(tiny_bert_dir)), 128, labels)
    metrics, _ = evaluate_sets(model.eval(), sets, labels, 128, "cpu", "mnli")
    assert json.loads(used.stdout)["metrics"]["dev_matched"]["acc"] == metrics["dev_matched"]["acc"]


_FAULTS_OF_REUSE = """
import resource, sys, torch
from srnet_cli.engine.runs.devices import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():  # a 64 MiB block (over glibc's largest heap block) among small ones, allocated and freed as a step does
    block = torch.empty(16 * 2**20)
    block.fill_(1.0)
    small = torch.ones(1000)
for _ in range(10):  # the heap settles: the first blocks can land where a small block splits a freed one
    step()
before = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(20):
    step()
after = resource.getrusage(resource.RUSAGE_SELF)
print(after.ru_minflt - before.ru_minflt, after.ru_maxrss - before.ru_maxrss)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings")
def test_kept_freed_memory_is_reused_without_page_faults():
    """Without the setting each 64 MiB block is a fresh mmap that page-faults through all 16,384 pages again; with
    it, the freed block is reused from the heap, and the heap does not grow step after step."""

    def faults_and_growth(mode: str) -> tuple[int, int]:
        program = [sys.executable, "-c", _FAULTS_OF_REUSE, mode]
        done = subprocess.run(program, capture_output=True, text=True, check=True)
        faults, growth_kib = done.stdout.split()
        return int(faults), int(growth_kib)

    assert faults_and_growth("default")[0] > 20 * 16_000  # every page of every block faults
    faults, growth_kib = faults_and_growth("keep")
    assert faults <= 2 * 16_400  # at most a block or two once, not one every step
    assert growth_kib <= 2 * 65_536  # reused: not a heap that grows by a block (65,536 KiB) each step
