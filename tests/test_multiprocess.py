"""Two CPU processes (torchrun, gloo) against one: each rank trains on its half of every global batch, evaluation
is sharded and gathered (each example exactly once), masks are hash-checked across ranks, the main process writes.

The tiny model has dropout off: with dropout each rank draws its own masks, so two processes cannot reproduce one.
Without it, the only difference is float summation order (gradients of two half-batches all-reduced): measured
trained weights differ by < 1e-6, so metrics, predictions and masks are equal and weights within 1e-5.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.runs.distributed import mask_hash, rank_share

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
def no_dropout_bert(tiny_bert_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nodrop") / "bert"
    shutil.copytree(tiny_bert_dir, path)
    config = json.loads((path / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (path / "config.json").write_text(json.dumps(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_process(args: list, out: Path) -> dict:
    result = runner.invoke(app, [str(a) for a in [*args, "--out", out]])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def two_processes(args: list, out: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "srnet_cli",
        *map(str, args),
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        command, env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # only the main process prints
    return json.loads(lines[0])


def assert_equivalent(one: Path, two: Path, results_one: dict, results_two: dict) -> None:
    assert results_one["metrics"] == results_two["metrics"]  # every set's n: no example dropped or counted twice
    assert results_one["best_step"] == results_two["best_step"]
    assert (one / "metrics.jsonl").read_text() == (two / "metrics.jsonl").read_text()
    for tsv in (one / "predictions").iterdir():
        assert tsv.read_text() == (two / "predictions" / tsv.name).read_text()
    # the saved artefacts: the best model (finetune) or the last mask with its stored weights (mask-train)
    rel = Path("model/model.safetensors") if (one / "model").is_dir() else Path("masks/last.safetensors")
    a, b = load_file(one / rel), load_file(two / rel)
    assert a.keys() == b.keys()
    for key in a:
        if a[key].dtype == torch.bool:
            assert torch.equal(a[key], b[key]), key
        else:
            assert torch.allclose(a[key], b[key], rtol=0, atol=1e-5), (key, (a[key] - b[key]).abs().max())


def test_finetune_on_two_processes_equals_one(no_dropout_bert, synth_dir, bias_file, tmp_path):
    args = [
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--model",
        no_dropout_bert,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--set",
        "train.max_steps=12",
        "--set",
        "eval.every=6",
        "--set",
        "train.lr=3e-3",
        *FAST,
    ]
    one = one_process(args, tmp_path / "one")
    two = two_processes(args, tmp_path / "two")
    assert_equivalent(tmp_path / "one", tmp_path / "two", one, two)
    assert not list((tmp_path / "two").glob("**/.*.tmp"))


def test_mask_train_on_two_processes_equals_one(no_dropout_bert, synth_dir, tmp_path):
    args = [
        "mask-train",
        "--task",
        "mnli",
        "--loss",
        "ce",
        "--model",
        no_dropout_bert,
        "--data-dir",
        synth_dir,
        "--sparsity",
        "0.6",
        "--initial-sparsity",
        "0.2",
        "--set",
        "train.max_steps=12",
        "--set",
        "eval.every=4",
        "--set",
        "search.select_after=0.3",
        "--set",
        "train.lr=0.01",
        *FAST,
    ]
    one = one_process(args, tmp_path / "one")
    two = two_processes(args, tmp_path / "two")
    assert_equivalent(tmp_path / "one", tmp_path / "two", one, two)
    hashes = [json.loads(line)["mask_hash"] for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(set(hashes)) == 3  # one per evaluation, the mask changing on the cubic schedule
    best = [load_file(d / "masks" / "best.safetensors") for d in (tmp_path / "one", tmp_path / "two")]
    assert all(torch.equal(best[0][k], best[1][k]) for k in best[0])


def test_rank_shares_cover_each_batch_once_and_weight_to_the_global_mean():
    losses = torch.rand(200)
    for size in (8, 7, 1):
        batch = list(range(100, 100 + size))
        shares = [rank_share(batch, rank, 2) for rank in range(2)]
        assert sorted(i for indices, weight in shares if weight > 0 for i in indices) == batch
        # DDP averages the ranks' gradients, so it optimises mean over ranks of weight · (the share's mean loss)
        ddp = sum(weight * losses[indices].mean() for indices, weight in shares) / 2
        assert ddp.item() == pytest.approx(losses[batch].mean().item(), rel=1e-6)


def test_mask_hash_sees_one_flipped_bit():
    masks = {"a.weight": torch.ones(4, 4, dtype=torch.bool), "b.weight": torch.zeros(3, dtype=torch.bool)}
    flipped = {**masks, "b.weight": torch.tensor([False, True, False])}
    assert mask_hash(masks) == mask_hash(dict(reversed(masks.items()))) != mask_hash(flipped)
