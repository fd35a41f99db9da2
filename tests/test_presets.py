"""Every shipped preset validates; precedence; error text."""

import tomllib

import pytest

from srnet_cli.config.loader import find_preset, list_presets, load_preset, parse_value, presets_root
from srnet_cli.config.schema import LOSSES_NEEDING_BIAS, PRESETS
from srnet_cli.errors import PresetError, UsageError


@pytest.mark.parametrize("command,name,path", list_presets(), ids=lambda x: str(x))
def test_every_shipped_preset_validates_and_lives_in_its_command_folder(command, name, path):
    raw = tomllib.loads(path.read_text())
    assert raw["command"] == command == path.parent.name
    if raw.get("loss", {}).get("kind") in LOSSES_NEEDING_BIAS:
        raw["loss"]["bias"] = "b.json"  # debiasing presets leave the bias path to --bias
    if raw.get("loss", {}).get("kind") == "conf-reg":
        raw["loss"]["teacher"] = "t.json"  # ... and the teacher to --teacher
    PRESETS[command].model_validate(raw)


@pytest.mark.parametrize("task", ["mnli", "qqp", "fever"])
def test_finetune_presets_for_every_loss_follow_table_3(task):
    for loss in ("ce", "poe", "reweight", "conf-reg"):
        raw = tomllib.loads(find_preset("finetune", f"{loss}-{task}").read_text())
        assert raw["task"] == task and raw["loss"]["kind"] == loss
        epochs = 5 if task == "mnli" and loss in ("poe", "conf-reg") else 3
        lr, every, metric = {"mnli": (5e-5, 1000, "acc"), "qqp": (2e-5, 1000, "f1"), "fever": (2e-5, 500, "acc")}[task]
        assert (raw["train"]["epochs"], raw["train"]["lr"], raw["eval"]["every"], raw["eval"]["metric"]) == (
            epochs,
            lr,
            every,
            metric,
        )
        assert raw["train"]["batch_size"] == 32 and raw["model"]["max_length"] == 128


@pytest.mark.parametrize("task", ["mnli", "qqp", "fever"])
@pytest.mark.parametrize("loss", ["poe", "reweight", "conf-reg"])
def test_unknown_bias_presets_are_their_base_preset_with_utamas_annealing(task, loss):
    unknown = tomllib.loads(find_preset("finetune", f"{loss}-unknown-{task}").read_text())
    base = tomllib.loads(find_preset("finetune", f"{loss}-{task}").read_text())
    assert unknown["loss"].pop("anneal") == [0.8, 1.0] and "anneal" not in base["loss"]
    unknown.pop("description"), base.pop("description")
    assert unknown == base


def test_required_presets_ship_with_paper_settings():
    names = {(c, n) for c, n, _ in list_presets()}
    assert {("finetune", "ce-mnli"), ("finetune", "poe-mnli"), ("evaluate", "mnli")} <= names
    for name, epochs in (("ce-mnli", 3), ("poe-mnli", 5)):
        raw = tomllib.loads(find_preset("finetune", name).read_text())
        assert "epochs" in raw["train"] and "max_steps" not in raw["train"]  # paper presets train by epochs
        assert (raw["train"]["lr"], raw["train"]["batch_size"], raw["train"]["epochs"]) == (5e-5, 32, epochs)
        assert raw["train"]["max_grad_norm"] == 1.0 and raw["eval"]["every"] == 1000
        assert raw["model"]["max_length"] == 128 and raw["train"]["warmup_steps"] == 3600  # the original script


def test_precedence_defaults_file_set_flags(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('command = "finetune"\n[train]\nlr = 1e-5\nseed = 4\nbatch_size = 8\n')
    preset, _, notes = load_preset(
        "finetune", str(path), ["train.lr=2e-5", "train.seed=5"], {"train.seed": 9, "loss.kind": None}
    )
    assert preset.train.batch_size == 8  # file
    assert preset.train.lr == 2e-5  # --set beats file
    assert preset.train.seed == 9  # named flag beats --set
    assert preset.train.epochs == 3  # field default
    assert preset.loss.kind == "ce"  # a flag left unset (None) changes nothing
    assert notes == ["train.seed: the named flag (9) overrides --set (5)"]


def test_errors_are_one_dotted_line_each(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('command = "finetune"\n[train]\nlrr = 1\nbatch_size = 0\n[loss]\nkind = "rubi"\n')
    with pytest.raises(PresetError) as info:
        load_preset("finetune", str(path), [], {})
    assert sorted(info.value.lines) == sorted(
        [
            "train.lrr: Extra inputs are not permitted",
            "train.batch_size: Input should be greater than or equal to 1",
            "loss.kind: Input should be 'ce', 'poe', 'reweight', 'conf-reg', 'learned-mixin', 'learned-mixin-h' or "
            "'focal' (got 'rubi')",
        ]
    )


def test_cross_field_rules():
    with pytest.raises(PresetError, match=r"loss: loss 'poe' needs a bias file"):
        load_preset("finetune", "poe-mnli", [], {})
    with pytest.raises(PresetError, match="train: set warmup_steps or warmup_ratio, not both"):
        load_preset("finetune", "ce-mnli", ["train.warmup_ratio=0.1", "train.warmup_steps=5"], {})
    # Overriding one of an exclusive pair replaces the other from the file (TOML cannot express "unset").
    preset, _, _ = load_preset("finetune", "ce-mnli", ["train.warmup_ratio=0.1"], {})
    assert (preset.train.warmup_ratio, preset.train.warmup_steps) == (0.1, None)
    with pytest.raises(PresetError, match="command: Input should be 'finetune'"):
        load_preset("finetune", str(find_preset("evaluate", "mnli")), [], {})


def test_unknown_names_and_bad_set_syntax():
    with pytest.raises(UsageError, match="no shipped finetune preset named 'xx-mnli'"):
        find_preset("finetune", "xx-mnli")
    with pytest.raises(UsageError, match="preset file not found"):
        find_preset("finetune", "missing/file.toml")
    with pytest.raises(UsageError, match="dotted.key=VALUE"):
        load_preset("finetune", "ce-mnli", ["train.lr"], {})


def test_set_values_are_toml_literals():
    assert parse_value("5e-5") == 5e-5
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("bert-base-uncased") == "bert-base-uncased"


def test_presets_root_is_the_repository_folder_in_a_checkout():
    assert (presets_root() / "finetune" / "ce-mnli.toml").is_file()


def test_non_finite_numbers_and_non_utf8_files_are_preset_errors(tmp_path):
    with pytest.raises(PresetError, match="train.epochs: Input should be a finite number"):
        load_preset("finetune", "ce-mnli", ["train.epochs=inf"], {})
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'command = "finetune"\ndescription = "caf\xe9"\n')
    with pytest.raises(PresetError, match="latin1.toml"):
        load_preset("finetune", str(path), [], {})
