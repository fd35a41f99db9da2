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
    for name in ("finetune", "imp", "mask-train", "retrain", "evaluate", "export-mask", "bias-model", "data", "demo",
                 "presets", "bench", "report"):  # fmt: skip
        assert f" {name} " in result.stdout


def test_presets_list_and_show():
    listed = json.loads(invoke("presets", "list", "--json").stdout)
    assert {"command": "finetune", "name": "poe-mnli"} in [{k: p[k] for k in ("command", "name")} for p in listed]
    shown = invoke("presets", "show", "finetune/poe-mnli")
    assert shown.exit_code == 0 and 'kind = "poe"' in shown.stdout
    missing = invoke("presets", "show", "nope")
    assert missing.exit_code == 2 and "error: no shipped preset 'nope'" in missing.stderr


def test_dry_run_prints_resolved_preset_with_flags_applied():
    result = invoke("finetune", "--task", "mnli", "--loss", "poe", "--bias", "b.json", "--model", "minilm",
                    "--seed", "7", "--set", "train.lr=3e-5", "--dry-run")  # fmt: skip
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


def test_engine_never_imports_cli_libraries():
    code = "import sys, srnet_cli.engine.loop, srnet_cli.engine.readers; assert not {'typer','rich'} & set(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


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
    assert errors == ["error: train.batch_size: Input should be greater than or equal to 1",
                      "error: eval.every: Input should be greater than or equal to 1"]  # fmt: skip
    path.write_text("command = [unclosed")
    bad = invoke("finetune", "--preset", str(path), "--dry-run")
    assert bad.exit_code == 2 and "invalid TOML" in bad.stderr


def test_console_script_and_module_entry_point_from_another_directory(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run([sys.executable, "-m", "srnet_cli", "presets", "list"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)  # fmt: skip
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
    assert invoke("data", "synth", "--out", str(data), "--train-size", "30", "--dev-size", "6",
                  "--hans-per-subcase", "1").exit_code == 0  # fmt: skip
    result = invoke("bias-model", "--data-dir", str(data), "--out", str(data), "--overwrite")
    assert result.exit_code == 1 and "would delete an input of this run" in result.stderr
    assert (data / "MNLI" / "train.tsv").is_file()
    link = tmp_path / "link"
    link.symlink_to(data)
    result = invoke("data", "synth", "--out", str(link), "--overwrite")
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr
