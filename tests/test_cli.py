"""CLI surface: help, presets, dry-run, exit codes, one-line errors, import layering."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_only_working_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in (
        "finetune",
        "imp",
        "mask-train",
        "retrain",
        "evaluate",
        "export-mask",
        "bias-model",
        "data",
        "demo",
        "presets",
        "bench",
        "report",
    ):
        assert f" {name} " in result.stdout


def test_presets_list_and_show():
    listed = json.loads(invoke("presets", "list", "--json").stdout)
    assert {"command": "finetune", "name": "poe-mnli"} in [{k: p[k] for k in ("command", "name")} for p in listed]
    shown = invoke("presets", "show", "finetune/poe-mnli")
    assert shown.exit_code == 0 and 'kind = "poe"' in shown.stdout
    missing = invoke("presets", "show", "nope")
    assert missing.exit_code == 2 and "error: no shipped preset 'nope'" in missing.stderr


def test_dry_run_prints_resolved_preset_with_flags_applied():
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--bias",
        "b.json",
        "--model",
        "minilm",
        "--seed",
        "7",
        "--set",
        "train.lr=3e-5",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert 'name_or_path = "minilm"' in result.stdout and "seed = 7" in result.stdout and "lr = 3e-05" in result.stdout
    as_json = json.loads(invoke("finetune", "--task", "mnli", "--dry-run", "--json").stdout)
    assert as_json["loss"]["kind"] == "ce" and as_json["train"]["epochs"] == 3


def test_dry_run_does_not_import_torch(tmp_path):
    code = (
        "import sys; from srnet_cli.cli import main; sys.argv=['srnet','finetune','--task','mnli','--dry-run'];\n"
        "try: main()\nexcept SystemExit: pass\nassert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_engine_and_recipes_never_import_cli_libraries():
    """The layering: every engine, config and recipe module imports without typer or rich (the CLI's)."""
    root = Path(__file__).resolve().parents[1] / "srnet_cli"
    modules = sorted(
        ".".join(p.relative_to(root.parent).with_suffix("").parts)
        for layer in ("engine", "recipes", "config")
        for p in (root / layer).rglob("*.py")
    )
    modules += ["srnet_cli.errors", "srnet_cli.parsing", "srnet_cli.dicts"]
    assert len(modules) > 40
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "assert not {'typer', 'rich'} & set(sys.modules), sorted({'typer', 'rich'} & set(sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_task_facts_have_one_source():
    """Config, CLI and report read engine.tasks: each task's selection metrics, bias kinds and OOD data."""
    from srnet_cli.config.schema import check_metric
    from srnet_cli.engine.data.tasks import TASKS
    from srnet_cli.recipes.report import REPORT_METRICS

    for name, spec in TASKS.items():
        for metric in spec.selection_metrics:
            check_metric(name, metric)
        assert REPORT_METRICS[name] == (spec.report_metrics[0], spec.report_metrics[1:])
        kinds = invoke("bias-model", "--task", name, "--kind", "nope", "--out", "x").stderr
        assert f"choose one of: {', '.join(spec.bias_kinds)}" in kinds


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["finetune", "--task", "mnli", "--set", "train.lrr=1", "--dry-run"], 2, "error: train.lrr: Extra inputs"),
        (
            ["finetune", "--task", "mnli", "--set", "train.lr=-1", "--dry-run"],
            2,
            "error: train.lr: Input should be greater than 0",
        ),
        (
            ["finetune", "--task", "mnli", "--set", "train.max_steps=0", "--dry-run"],
            2,
            "error: train.max_steps: Input should be greater",
        ),
        (["finetune", "--task", "qnli", "--dry-run"], 2, "error: unknown task 'qnli': srnet knows mnli, qqp, fever"),
        (["finetune", "--task", "mnli", "--loss", "poe", "--dry-run"], 2, "error: loss: loss 'poe' needs a bias file"),
        (["finetune", "--dry-run"], 2, "error: finetune needs --preset NAME|PATH or --task"),
        (["finetune", "--task", "mnli"], 2, "error: finetune needs --out DIR"),
        (["finetune", "--preset", "nowhere/p.toml"], 2, "error: preset file not found"),
        (["finetune", "--task", "mnli", "--set", "noequals"], 2, "is not of the form dotted.key=VALUE"),
        (["finetune", "--task", "mnli", "--out", "x", "--device", "tpu"], 2, "error: --device 'tpu' is not one of"),
        (["bias-model", "--kind", "bag", "--out", "x"], 2, "error: --kind 'bag' is not available for mnli"),
        (["data", "synth", "--task", "speech", "--out", "x"], 2, "error: --task 'speech' has no built-in benchmark"),
    ],
)
def test_bad_input_gives_one_line_error_and_exit_code(args, code, message):
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    first = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(first) >= 1 and all(len(line) < 300 for line in first)


def test_bad_preset_file_lists_every_problem(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('command = "finetune"\n[train]\nbatch_size = 0\n[eval]\nevery = 0\n')
    result = invoke("finetune", "--preset", str(path), "--dry-run")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: train.batch_size: Input should be greater than or equal to 1",
        "error: eval.every: Input should be greater than or equal to 1",
    ]
    path.write_text("command = [unclosed")
    bad = invoke("finetune", "--preset", str(path), "--dry-run")
    assert bad.exit_code == 2 and "invalid TOML" in bad.stderr


def test_console_script_and_module_entry_point_from_another_directory(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run(
        [sys.executable, "-m", "srnet_cli", "presets", "list"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert listed.returncode == 0 and "finetune/poe-mnli" in listed.stdout
    version = subprocess.run([sys.executable, "-m", "srnet_cli", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("srnet ")


def test_out_dir_rules(tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke("data", "synth", "--out", str(tmp_path / "file"))
    assert result.exit_code == 1 and "is a file, not a directory" in result.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    result = invoke("data", "synth", "--out", str(mine))
    assert result.exit_code == 1 and "is not empty" in result.stderr
    result = invoke("data", "synth", "--out", str(mine), "--overwrite")
    assert result.exit_code == 1 and "was not made by srnet; refusing to overwrite it" in result.stderr
    assert (mine / "notes.txt").read_text() == "precious"


def test_synth_then_overwrite(tmp_path):
    out = tmp_path / "d"
    args = ["data", "synth", "--out", str(out), "--train-size", "30", "--dev-size", "6", "--hans-per-subcase", "1"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 1  # not empty
    again = invoke(*args, "--overwrite", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["files"]["MNLI/train.tsv"] == 30
    assert Path(out / "MNLI/hans/heuristics_evaluation_set.txt").is_file()


def test_overwrite_needs_srnet_marker_and_spares_inputs(tmp_path, synth_dir):
    lookalike = tmp_path / "proj"
    (lookalike / "src").mkdir(parents=True)
    (lookalike / "results.json").write_text("{}")  # a common file name does not make it an srnet run
    result = invoke("data", "synth", "--out", str(lookalike), "--overwrite")
    assert result.exit_code == 1 and "was not made by srnet" in result.stderr
    assert (lookalike / "src").is_dir()
    # bias-model --overwrite onto a directory that holds its own input data is refused
    data = tmp_path / "data"
    assert (
        invoke(
            "data", "synth", "--out", str(data), "--train-size", "30", "--dev-size", "6", "--hans-per-subcase", "1"
        ).exit_code
        == 0
    )
    result = invoke("bias-model", "--data-dir", str(data), "--out", str(data), "--overwrite")
    assert result.exit_code == 1 and "would delete an input of this run" in result.stderr
    assert (data / "MNLI" / "train.tsv").is_file()
    link = tmp_path / "link"
    link.symlink_to(data)
    result = invoke("data", "synth", "--out", str(link), "--overwrite")
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr


def test_named_hyperparameter_flags_and_the_run_length(tmp_path, synth_dir):
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--max-steps",
        "40",
        "--lr",
        "1e-4",
        "--batch-size",
        "16",
        "--max-length",
        "64",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["train"]
    assert (train["max_steps"], train["lr"], train["batch_size"]) == (40, 1e-4, 16)
    assert json.loads(result.stdout)["model"]["max_length"] == 64
    # the preset's 3600-step warm-up was sized for 3 MNLI epochs: a 40-step run gets 10% of itself, and is told so
    assert train["warmup_ratio"] == 0.1 and train["warmup_steps"] is None
    assert "sized for its own run length" in result.stderr
    assert "max_steps decides the run: 40 steps; warm-up 4 steps" in result.stderr
    steps = json.loads(invoke("imp", "--task", "mnli", "--warmup", "7", "--dry-run", "--json").stdout)["train"]
    ratio = json.loads(invoke("mask-train", "--task", "mnli", "--warmup", "0.05", "--dry-run", "--json").stdout)
    assert steps["warmup_steps"] == 7 and steps["warmup_ratio"] is None
    assert ratio["train"]["warmup_ratio"] == 0.05 and ratio["train"]["warmup_steps"] is None
    # epochs decide: 240 rows at batch 32 = 8 steps an epoch (counted from the file), 2 epochs = 16 steps
    epochs = invoke(
        "retrain",
        "--task",
        "mnli",
        "--mask",
        "m.safetensors",
        "--data-dir",
        str(synth_dir),
        "--epochs",
        "2",
        "--warmup",
        "0.25",
        "--dry-run",
    )
    assert "epochs decide the run: 2 epochs x 8 steps (240 training rows" in epochs.stderr
    assert "= 16 steps; warm-up 4 steps" in epochs.stderr
    # a named flag beats --set of the same key, and says so
    both = invoke("finetune", "--task", "mnli", "--set", "train.lr=1e-3", "--lr", "2e-5", "--dry-run", "--json")
    assert json.loads(both.stdout)["train"]["lr"] == 2e-5 and "overrides --set" in both.stderr


@pytest.mark.parametrize("warmup", ["1.5", "-3", "ten", "0.1.2"])
def test_warmup_flag_is_steps_or_a_ratio(warmup):
    result = invoke("finetune", "--task", "mnli", "--warmup", warmup, "--dry-run")
    assert result.exit_code == 2 and "--warmup" in result.stderr and "Traceback" not in result.output


def test_a_warmup_longer_than_the_run_is_refused_before_anything_is_written(tmp_path, synth_dir, tiny_bert_dir):
    out = tmp_path / "run"
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        str(tiny_bert_dir),
        "--data-dir",
        str(synth_dir),
        "--max-steps",
        "4",
        "--warmup",
        "10",
        "--out",
        str(out),
    )
    assert result.exit_code == 2
    assert "error: the warm-up (10 steps) is not shorter than the run (4 steps)" in result.stderr
    assert "--warmup 0.1" in result.stderr and not out.exists()


def test_tasks_lists_sets_metrics_and_bias_kinds():
    rows = {r["task"]: r for r in json.loads(invoke("tasks", "--json").stdout)}
    assert set(rows) == {"mnli", "qqp", "fever"}
    assert rows["mnli"]["ood_sets"] == ["hans"] and rows["qqp"]["selection_metrics"] == ["f1", "weighted_f1", "acc"]
    assert rows["fever"]["bias_kinds"] == ["claim-only"] and rows["mnli"]["id_sets"][0] == rows["mnli"]["selects_on"]
    table = invoke("tasks")
    assert table.exit_code == 0 and "paws_qqp" in table.stdout
    wrong = invoke("evaluate", "--task", "mnlx", "--model", "m")
    assert wrong.exit_code == 2 and "unknown task 'mnlx': srnet knows mnli, qqp, fever" in wrong.stderr


@pytest.mark.parametrize(
    "device,message",
    [("cuda:1", "no CUDA device is visible"), ("cuda:x", "cuda:N"), ("gpu", "is not one of auto, cpu, cuda, cuda:N")],
)
def test_device_cuda_n(tmp_path, synth_dir, tiny_bert_dir, device, message):
    out = tmp_path / "run"
    result = invoke(
        "finetune",
        "--task",
        "mnli",
        "--model",
        str(tiny_bert_dir),
        "--data-dir",
        str(synth_dir),
        "--max-steps",
        "1",
        "--device",
        device,
        "--out",
        str(out),
    )
    assert result.exit_code == 2 and message in result.stderr and not out.exists()


def test_log_lines_are_not_padded_or_wrapped():
    import io

    from srnet_cli.cli.reporting import RichReporter

    stream = io.StringIO()
    reporter = RichReporter(stream=stream)
    long = "x" * 300 + " [not markup]"
    reporter.log(long)
    reporter.start(10, "train")
    reporter.start(4, "evaluate hans")  # nested: an evaluation inside training
    for _ in range(4):
        reporter.advance(1)
    reporter.end()
    reporter.advance(10, loss=0.5)
    reporter.end()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(long) and lines[0] == lines[0].rstrip()
    assert any(line.endswith("evaluate hans 4/4") for line in lines)
    assert lines[-1].endswith("train 10/10 loss 0.5") and all(len(line) < 350 for line in lines)
