"""Every option takes effect or is refused: for each command and each of its code paths (loss, kind, rewind,
schedule, ...), a tiny real run records which preset keys the code reads; every key of the preset must be read on
that path, or be declared without effect there (config/effect.py), in which case a non-default value is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.config import schema

runner = CliRunner()
FAST = ["--max-steps", "4", "--batch-size", "16", "--warmup", "0", "--json", "--quiet"]


def keys_of(preset_cls: type) -> dict[str, tuple[type, str]]:
    """Dotted key -> (the class that holds it, field name), for every leaf key of a preset class."""
    keys = {}
    for name, field in preset_cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, schema.Section):
            for sub in type(default).model_fields:
                keys[f"{name}.{sub}"] = (type(default), sub)
        else:
            keys[name] = (preset_cls, name)
    return keys


class Reads:
    """Which (class, field) pairs of preset sections were read while it was active."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def __enter__(self):
        original = schema.Section.__getattribute__
        seen = self.seen

        def tracking(obj, name):
            value = original(obj, name)
            if not name.startswith("_") and name in type(obj).model_fields:
                seen.add((type(obj).__name__, name))
            return value

        self._original = original
        schema.Section.__getattribute__ = tracking  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc):
        schema.Section.__getattribute__ = self._original  # type: ignore[method-assign]

    def read(self, cls: type, field: str) -> bool:
        names = {c.__name__ for c in cls.__mro__} | {c.__name__ for c in cls.__subclasses__()}
        return any((n, field) in self.seen for n in names)


@pytest.fixture(scope="module")
def paths(tiny_bert_dir, synth_dir, bias_file, tmp_path_factory) -> dict[str, Path]:
    """A fine-tuned tiny model, a mask-train run, an imp run and a teacher file, made once for the variants."""
    root = tmp_path_factory.mktemp("options")
    common = ["--task", "mnli", "--data-dir", synth_dir, *FAST]
    for args in (
        ["finetune", "--model", tiny_bert_dir, "--out", root / "ft"],
        ["mask-train", "--model", root / "ft" / "model", "--sparsity", "0.5", "--out", root / "mt"],
        ["imp", "--model", root / "ft" / "model", "--sparsity", "0.2", "--set", "imp.rate=0.1", "--out", root / "imp"],
    ):
        result = runner.invoke(app, [str(a) for a in args + common])
        assert result.exit_code == 0, result.output
    teacher = runner.invoke(app, [str(a) for a in ["evaluate", "--model", root / "ft" / "model", "--task", "mnli",
                                  "--data-dir", synth_dir, "--split", "train", "--save-probs", root / "t.json",
                                  "--json", "--quiet"]])  # fmt: skip
    assert teacher.exit_code == 0, teacher.output
    return {"model": tiny_bert_dir, "data": synth_dir, "bias": bias_file, "root": root, "teacher": root / "t.json"}


# (id, command, arguments): every code path that reads a different set of keys
VARIANTS = [
    ("finetune-ce", "finetune", ["--loss", "ce"]),
    ("finetune-poe", "finetune", ["--loss", "poe", "--bias", "{bias}", "--set", "loss.anneal=[0.8, 1.0]"]),
    ("finetune-conf-reg", "finetune", ["--loss", "conf-reg", "--bias", "{bias}", "--teacher", "{teacher}"]),
    ("finetune-learned-mixin-h", "finetune", ["--loss", "learned-mixin-h", "--bias", "{bias}"]),
    ("finetune-focal", "finetune", ["--loss", "focal", "--bias", "{bias}", "--set", "loss.anneal=[0.8, 1.0]"]),
    (
        "mask-train-learned-mixin",
        "mask-train",
        ["--model", "{root}/ft/model", "--sparsity", "0.5", "--loss", "learned-mixin", "--bias", "{bias}"],
    ),  # fmt: skip
    ("imp", "imp", ["--model", "{root}/ft/model", "--sparsity", "0.2", "--set", "imp.rate=0.1"]),
    (
        "imp-rewind",
        "imp",
        ["--model", "{root}/ft/model", "--sparsity", "0.2", "--set", "imp.rate=0.1", "--rewind", "pretrained"],
    ),  # fmt: skip
    ("mask-train", "mask-train", ["--model", "{root}/ft/model", "--sparsity", "0.5"]),
    (
        "mask-train-gradual",
        "mask-train",
        [
            "--model",
            "{root}/ft/model",
            "--sparsity",
            "0.5",
            "--initial-sparsity",
            "0.3",
            "--set",
            "search.recalibrate_every=2",
        ],
    ),  # fmt: skip
    ("mask-train-ood", "mask-train", ["--model", "{root}/ft/model", "--sparsity", "0.5", "--train-with", "hans"]),
    ("retrain", "retrain", ["--mask", "{root}/mt"]),
    ("retrain-imp-level", "retrain", ["--mask", "{root}/imp", "--sparsity", "0.2"]),
    ("evaluate", "evaluate", ["--model", "{root}/ft/model"]),
    ("evaluate-mask", "evaluate", ["--model", "{root}/ft/model", "--mask", "{root}/mt"]),
    ("evaluate-train", "evaluate", ["--model", "{root}/ft/model", "--split", "train", "--save-probs", "{out}.json"]),
    (
        "evaluate-file",
        "evaluate",
        ["--model", "{root}/ft/model", "--file", "{data}/MNLI/hans/heuristics_evaluation_set.txt", "--layout", "hans"],
    ),  # fmt: skip
    ("bias-shallow", "bias-model", ["--kind", "shallow", "--subset", "40"]),
    ("bias-shallow-fraction", "bias-model", ["--kind", "shallow", "--set", "learner.subset_floor=20"]),
    ("bias-weak-learner", "bias-model", ["--kind", "weak-learner", "--layers", "1"]),
]
TRAINING = {"finetune", "imp", "mask-train", "retrain", "bias-model"}


def variant_args(command: str, args: list[str], paths: dict[str, Path], out: Path) -> list[str]:
    filled = [a.format(**paths, out=out) for a in args]
    base = ["--task", "mnli", "--data-dir", str(paths["data"])]
    if "--model" not in filled:
        base += ["--model", str(paths["model"])]
    if command in TRAINING:
        base += FAST
    else:
        base += ["--json", "--quiet"]
    return [command, *base, *filled]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_key_is_read_or_declared_without_effect(variant, paths, tmp_path):
    from srnet_cli.config.effect import INFORMATIONAL, no_effect

    name, command, args = variant
    argv = variant_args(command, args, paths, tmp_path / "out")
    dry = runner.invoke(app, [*argv, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    preset = schema.PRESETS[command].model_validate(json.loads(dry.stdout))
    with Reads() as reads:
        result = runner.invoke(app, [*argv, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    silent = [
        key
        for key, (cls, field) in keys_of(type(preset)).items()
        if not reads.read(cls, field) and no_effect(preset, key) is None and key not in INFORMATIONAL
    ]
    assert not silent, f"{name}: these keys are neither read nor declared without effect: {silent}"


# for every declared rule: a preset where it fires, with the key set to a value other than the default
FIRING = {
    "train.epochs": ("finetune", {"train": {"max_steps": 4, "epochs": 2}}),
    "train.save_every": ("imp", {"train": {"save_every": 2}}),
    "loss.allow_pickle": ("finetune", {"loss": {"kind": "poe", "bias": "b.json", "allow_pickle": True}}),
    "eval.every": ("evaluate", {"eval": {"every": 2}}),
    "eval.ood_during_training": ("imp", {"eval": {"ood_during_training": True}}),
    "eval.metric": ("evaluate", {"task": "qqp", "eval": {"metric": "f1"}}),
    "data.train_limit": ("evaluate", {"data": {"train_limit": 5}}),
    "data.train_ids": ("evaluate", {"data": {"train_ids": "ids.txt"}}),
    "data.require_ood": ("evaluate", {"split": "train", "data": {"require_ood": True}}),
    "use_mask_weights": ("evaluate", {"use_mask_weights": True}),
    "mask.file": ("imp", {"mask": {"file": "m.safetensors"}}),
    "mask.scope": ("retrain", {"mask": {"file": "m", "scope": "global"}}),
    "mask.include_pooler": ("retrain", {"mask": {"file": "m", "include_pooler": False}}),
    "mask.include_classifier": ("imp", {"mask": {"granularity": "head", "include_classifier": True}}),
    "search.schedule_end": ("mask-train", {"search": {"schedule_end": 0.5}}),
    "search.ood_copies": ("mask-train", {"search": {"ood_copies": 3}}),
    "loss.entropy_weight": ("finetune", {"loss": {"kind": "learned-mixin", "bias": "b.json", "entropy_weight": 0.1}}),
    "loss.gamma": ("finetune", {"loss": {"kind": "poe", "bias": "b.json", "gamma": 1.0}}),
    "learner.subset": ("bias-model", {"kind": "weak-learner", "learner": {"subset": 5}}),
    "learner.layers": ("bias-model", {"kind": "shallow", "learner": {"layers": 1}}),
    "learner.subset_fraction": ("bias-model", {"kind": "shallow", "learner": {"subset": 40, "subset_fraction": 0.1}}),
    "learner.subset_floor": ("bias-model", {"kind": "weak-learner", "learner": {"subset_floor": 5}}),
}


def test_every_declared_rule_is_refused_when_it_fires():
    from srnet_cli.config.effect import RULES
    from srnet_cli.config.loader import validate
    from srnet_cli.errors import PresetError

    assert set(FIRING) == set(RULES)  # a new rule comes with its case here
    for key, (command, raw) in FIRING.items():
        with pytest.raises(PresetError) as info:
            validate(command, {"command": command, **raw})
        assert any(line.startswith(f"{key}") and "has no effect here" in line for line in info.value.lines), key
        defaults = {k: v for k, v in raw.items() if k in ("task", "split", "kind")}
        if key.startswith(("mask.",)) and command == "retrain":
            defaults["mask"] = {"file": "m"}
        if key == "loss.allow_pickle":
            defaults["loss"] = {"kind": "poe", "bias": "b.pkl", "allow_pickle": True}  # a pickle: it takes effect
            validate(command, {"command": command, **defaults})


def test_the_issues_examples_are_refused_by_the_cli(synth_dir, tiny_bert_dir, tmp_path):
    base = ["--task", "mnli", "--model", str(tiny_bert_dir), "--data-dir", str(synth_dir), "--out", str(tmp_path / "o")]
    weak = runner.invoke(app, ["bias-model", "--kind", "weak-learner", "--subset", "5", *base])
    assert weak.exit_code == 2 and "learner.subset (--subset) = 5 has no effect here" in weak.output
    shallow = runner.invoke(app, ["bias-model", "--kind", "shallow", "--layers", "1", *base])
    assert shallow.exit_code == 2 and "--kind shallow keeps every layer" in shallow.output
    both = runner.invoke(app, ["finetune", *base, "--max-steps", "4", "--epochs", "2"])
    assert both.exit_code == 2 and "train.max_steps decides the run length" in both.output
    assert not (tmp_path / "o").exists()
    lexical = runner.invoke(app, ["bias-model", "--task", "mnli", "--kind", "overlap", "--dry-run"])
    assert lexical.exit_code == 2 and "(--dry-run given)" in lexical.output and "--preset" not in lexical.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sparsity", "0.5", "--set", "imp.rate=0.3"], "imp.rate 0.3 does not divide --sparsity 0.5"),
        (["--sparsity", "0.5", "--set", "imp.rate=1e-12"], "makes 5e+11 levels"),
        (["--sparsity", "0.04"], "is below the first level"),
    ],
)
def test_imp_levels_land_exactly_on_the_sparsity_or_are_refused(args, message, tmp_path):
    for extra in (["--dry-run"], ["--out", str(tmp_path / "o")]):
        result = runner.invoke(app, ["imp", "--task", "mnli", *args, *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_imp_levels_are_exact_multiples():
    from srnet_cli.recipes.imp import levels

    assert levels(0.1, 0.9) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert levels(0.25, 0.5) == [0.25, 0.5]
    hint = pytest.raises(Exception, levels, 0.3, 0.5)
    assert "imp.rate=0.25 (2 levels) or 0.5 (1 level), or --sparsity 0.3 or 0.6" in str(hint.value)


def test_a_gradual_schedule_that_cannot_reach_its_sparsity_is_refused(synth_dir, tiny_bert_dir, tmp_path):
    args = ["mask-train", "--task", "mnli", "--model", str(tiny_bert_dir), "--data-dir", str(synth_dir),
            "--sparsity", "0.5", "--initial-sparsity", "0.3", "--max-steps", "10", "--warmup", "0"]  # fmt: skip
    for extra in (["--dry-run"], ["--out", str(tmp_path / "o")]):
        late = runner.invoke(app, [*args, "--set", "search.recalibrate_every=4", *extra])
        assert late.exit_code == 2 and "would end at sparsity" in late.output, late.output
        assert "search.recalibrate_every=1 (it divides the 10 steps)" in late.output
        never = runner.invoke(app, [*args, "--set", "search.recalibrate_every=11", *extra])
        assert never.exit_code == 2 and "never in a run of 10 steps" in never.output
    assert not (tmp_path / "o").exists()
    landed = runner.invoke(app, [*args, "--batch-size", "16", "--json", "--quiet", "--out", str(tmp_path / "ok")])
    assert landed.exit_code == 0, landed.output  # unset: reset at every evaluation and at the last step
    assert json.loads(landed.stdout)["sparsity"]["encoder_sparsity"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model", "/no/such/model"], 1, "model path /no/such/model does not exist"),
        (["--seed", "4294967296"], 2, "train.seed"),
    ],
)
def test_demo_checks_every_input_before_it_writes(args, code, message, tmp_path):
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path / "demo"), *args])
    assert result.exit_code == code and message in result.output, result.output
    assert not (tmp_path / "demo").exists()


def test_a_full_disk_before_anything_was_saved_says_so(synth_dir, tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SRNET_FAULT", "enospc@write-metrics.jsonl")
    args = ["finetune", "--task", "mnli", "--model", str(tiny_bert_dir), "--data-dir", str(synth_dir), *FAST]
    failed = runner.invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert failed.exit_code == 1 and "no space left on device" in failed.output
    assert "intact" not in failed.output and "nothing resumable was saved" in failed.output


def test_file_inputs_get_file_hints(tiny_bert_dir, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_bert_dir), "--file", str(tmp_path / "empty.txt"),
                                 "--layout", "hans"])  # fmt: skip
    assert result.exit_code == 1 and "check --file: a hans file" in result.output and "--data-dir" not in result.output


def _srnet(*args: str, **kwargs):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "srnet_cli", *args], text=True, **kwargs)


def test_signals_during_start_up_end_with_one_line_and_the_exit_code(synth_dir, tiny_bert_dir, tmp_path):
    """A sweep of moments from interpreter start to training: imports, argument parsing, loading, the first step."""
    import signal
    import subprocess
    import time

    for i, moment in enumerate([0.1, 0.3, 0.5, 0.8, 1.1, 1.5, 2.0, 3.0]):
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
        proc = _srnet("finetune", "--task", "mnli", "--model", str(tiny_bert_dir), "--data-dir", str(synth_dir),
                      "--max-steps", "100000", "--warmup", "0", "--out", str(tmp_path / f"run-{i}"),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(moment)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == (130 if sig == signal.SIGINT else 143), (moment, stderr)
        assert "Traceback" not in stderr and stderr.count("error: interrupted by") == 1, (moment, stderr)


def test_a_closed_stdout_pipe_ends_quietly():
    import subprocess

    proc = _srnet("mask-train", "--help", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader went away, like `| head`
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1 and stderr == ""


def test_a_signal_deferred_inside_an_import_stops_the_run_and_cleanup_is_not_cut_short(monkeypatch):
    """A signal landing in an import is deferred, then raised once the import is done (not lost); a signal raised
    at once does not come back while the run unwinds (its clean-up is not interrupted again)."""
    import os
    import signal
    import sys
    import time

    from srnet_cli.cli import boundary
    from srnet_cli.errors import Interrupted

    module = "srnet_test_slow_import"  # a module whose import receives SIGTERM and takes 0.3 s more
    code = "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(0.3)\nDONE = True\n"
    finder_dir = __import__("tempfile").mkdtemp()
    with open(os.path.join(finder_dir, f"{module}.py"), "w") as f:
        f.write(code)
    monkeypatch.syspath_prepend(finder_dir)
    cleaned = []
    with pytest.raises(Interrupted), boundary._signals_raise():
        imported = __import__(module)  # the signal arrives inside the import: the import completes
        assert imported.DONE
        try:
            time.sleep(5)  # the deferred signal is raised within 0.1 s of the import's end
        finally:
            time.sleep(0.4)  # clean-up longer than the resend interval is not interrupted
            cleaned.append(True)
    sys.modules.pop(module, None)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is not boundary._on_signal  # handlers restored


def test_retrain_sparsity_picks_an_imp_level_or_is_refused(tmp_path):
    from srnet_cli.errors import MaskError
    from srnet_cli.recipes.subnetworks import resolve_mask_path

    run = tmp_path / "mask-train-run"
    (run / "masks").mkdir(parents=True)
    (run / "masks" / "best.safetensors").write_bytes(b"")
    assert resolve_mask_path(str(run), None) == run / "masks" / "best.safetensors"
    with pytest.raises(MaskError, match="no mask found .* for sparsity 0.70"):
        resolve_mask_path(str(run), 0.7)  # a mask-train run has no level 0.70: never its best mask instead
    with pytest.raises(MaskError, match="picks an IMP level in a run directory"):
        resolve_mask_path(str(run / "masks" / "best.safetensors"), 0.7)
