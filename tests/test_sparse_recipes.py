"""imp, mask-train, retrain, export-mask and evaluate --mask end to end on a tiny random BERT (CPU, a few steps)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.sparse.mask_io import load_mask_file

runner = CliRunner()
FAST = ["--set", "train.batch_size=8", "--set", "train.warmup_steps=0", "--set", "eval.batch_size=64"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def imp_run(tiny_bert_dir, synth_dir, bias_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp") / "run"
    results = ok(
        invoke(
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
            "--out",
            out,
            "--set",
            "train.max_steps=20",
            *FAST,
            "--json",
        )
    )
    return out, results


def test_imp_produces_levels_with_masks_and_metrics(imp_run):
    out, results = imp_run
    levels = [row["level"] for row in results["levels"]]
    assert levels == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert [row["step"] for row in results["levels"]] == list(range(2, 20, 2))  # end of each 0.1·t_total interval
    for row in results["levels"]:
        assert set(row["metrics"]) == {"dev_matched", "dev_mismatched", "hans"}
        mask = load_mask_file(out / "masks" / f"level-{row['level']:.2f}.safetensors")
        assert mask.meta["sparsity"] == pytest.approx(row["level"], abs=2e-3) == row["sparsity"]
        assert not any(k.startswith("classifier") for k in mask.masks)  # IMP never prunes the classifier
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["level"] for x in lines] == levels
    # Levels are nested: every weight pruned at 0.1 stays pruned at 0.5.
    low, high = (load_mask_file(out / "masks" / f"level-{s}.safetensors").masks for s in ("0.10", "0.50"))
    assert all(torch.all(high[k] <= low[k]) for k in low)


def test_lottery_ticket_then_retrain_keeps_pruned_weights_zero(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    lt = tmp_path / "lt"
    ok(
        invoke(
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
            "pretrained",
            "--sparsity",
            "0.5",
            "--out",
            lt,
            "--set",
            "train.max_steps=10",
            *FAST,
            "--json",
        )
    )
    assert sorted(p.name for p in (lt / "masks").iterdir())[-1] == "level-0.50.safetensors"
    rt = tmp_path / "rt"
    results = ok(
        invoke(
            "retrain",
            "--task",
            "mnli",
            "--loss",
            "ce",
            "--model",
            tiny_bert_dir,
            "--mask",
            lt,
            "--sparsity",
            "0.3",
            "--data-dir",
            synth_dir,
            "--out",
            rt,
            "--set",
            "train.max_steps=6",
            "--set",
            "eval.every=3",
            *FAST,
            "--json",
        )
    )
    assert results["command"] == "retrain" and results["mask"].endswith("level-0.30.safetensors")
    assert results["sparsity"]["sparsity"] == pytest.approx(0.3, abs=2e-3)  # measured on the saved weights
    from transformers import AutoModelForSequenceClassification

    saved = AutoModelForSequenceClassification.from_pretrained(rt / "model")
    mask = load_mask_file(lt / "masks" / "level-0.30.safetensors").masks
    params = dict(saved.named_parameters())
    for name, m in mask.items():
        assert torch.all(params[name][~m] == 0) and params[name][m].count_nonzero() == m.sum(), name


def test_mask_train_selects_after_ratio_and_evaluate_reproduces(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    out = tmp_path / "mt"
    args = ["--model", tiny_bert_dir, "--data-dir", synth_dir, "--bias", bias_file, "--sparsity", "0.6", "--out", out]
    steps = ["--set", "train.max_steps=12", "--set", "eval.every=3", "--set", "train.lr=0.01"]
    results = ok(invoke("mask-train", "--task", "mnli", "--loss", "poe", *args, *steps, *FAST, "--json"))
    assert results["best_step"] in (9, 12)  # select_after 0.7 of 12 steps: evaluations at 9 and 12 only
    assert results["sparsity"]["sparsity"] == pytest.approx(0.6, abs=2e-3)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # masks from before selection starts (steps 3, 6) cannot be chosen: they are not evaluated
    assert [x["step"] for x in lines] == [9, 12] and all(x["target_sparsity"] == 0.6 for x in lines)
    mask = load_mask_file(out / "masks" / "best.safetensors")
    assert "classifier.weight" in mask.masks and mask.meta["step"] == results["best_step"]
    evaluated = ok(
        invoke("evaluate", "--model", tiny_bert_dir, "--mask", out, "--task", "mnli", "--data-dir", synth_dir, "--json")
    )
    assert evaluated["metrics"] == results["metrics"]
    # both mask files of the search say how it was found, so a retrain of either is named alike
    from srnet_cli.recipes.finetune import mask_method

    last = load_mask_file(out / "masks" / "last.safetensors")
    assert mask_method(last.meta) == mask_method(mask.meta) == "mask-train poe"


def test_mask_train_on_pretrained_model_stores_the_random_head(tiny_bert_dir, synth_dir, tmp_path):
    from transformers import BertModel

    encoder_only = tmp_path / "pretrained"
    BertModel.from_pretrained(tiny_bert_dir).save_pretrained(encoder_only)  # no classifier: a pre-trained model
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        (encoder_only / name).write_bytes((tiny_bert_dir / name).read_bytes())
    out = tmp_path / "pt"
    results = ok(
        invoke(
            "mask-train",
            "--preset",
            "pt-ce-mnli",
            "--model",
            encoder_only,
            "--data-dir",
            synth_dir,
            "--sparsity",
            "0.5",
            "--out",
            out,
            "--set",
            "train.max_steps=6",
            "--set",
            "eval.every=2",
            "--set",
            "train.lr=0.01",
            *FAST,
            "--json",
        )
    )
    assert results["best_step"] in (2, 4, 6)  # select_after 0: any evaluation may win
    mask = load_mask_file(out / "masks" / "best.safetensors")
    assert {"classifier.weight", "classifier.bias"} <= set(mask.weights)
    assert mask.meta["labels"] == ["contradiction", "entailment", "neutral"]
    evaluated = ok(
        invoke(
            "evaluate",
            "--model",
            encoder_only,
            "--mask",
            out / "masks" / "best.safetensors",
            "--task",
            "mnli",
            "--data-dir",
            synth_dir,
            "--json",
        )
    )
    assert evaluated["metrics"] == results["metrics"]  # the search's classifier is restored, not a new random one
    dropped = invoke("export-mask", out, "--format", "bool", "--to", tmp_path / "b.safetensors")
    assert dropped.exit_code == 2 and "cannot hold" in dropped.stderr  # converting must not lose the stored head


def test_gradual_sparsity_follows_the_cubic_schedule(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    out = tmp_path / "g"
    results = ok(
        invoke(
            "mask-train",
            "--preset",
            "gradual-poe-mnli",
            "--model",
            tiny_bert_dir,
            "--data-dir",
            synth_dir,
            "--bias",
            bias_file,
            "--out",
            out,
            "--set",
            "train.max_steps=8",
            "--set",
            "eval.every=2",
            "--set",
            "search.select_after=0",
            *FAST,
            "--json",
        )
    )
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    expected = [0.9 - 0.2 * (1 - s / 8) ** 3 for s in (2, 4, 6, 8)]
    assert [x["target_sparsity"] for x in lines] == pytest.approx(expected, abs=1e-6)
    assert [x["sparsity"] for x in lines] == pytest.approx(expected, abs=2e-3)
    # The saved mask has the sparsity it was selected at (not reset to the initial 0.7).
    best = next(x for x in lines if x["step"] == results["best_step"])
    assert load_mask_file(out / "masks" / "best.safetensors").meta["sparsity"] == pytest.approx(best["sparsity"])


def test_export_mask_inspect_convert_and_bake(imp_run, tiny_bert_dir, tmp_path):
    out, _ = imp_run
    info = ok(invoke("export-mask", out, "--sparsity", "0.5", "--json"))
    assert info["sparsity"] == pytest.approx(0.5, abs=2e-3) and len(info["per_layer"]) == 13
    original = tmp_path / "mask.pt"
    ok(invoke("export-mask", out, "--sparsity", "0.5", "--to", original, "--json"))
    again = ok(invoke("export-mask", original, "--to", tmp_path / "back.safetensors", "--json"))
    assert again["zeros"] == info["zeros"]
    nested = ok(
        invoke("export-mask", original, "--format", "bool", "--to", tmp_path / "new" / "b.safetensors", "--json")
    )
    assert nested["written"].endswith("new/b.safetensors")
    clash = invoke("export-mask", original, "--to", tmp_path / "back.safetensors")
    assert clash.exit_code == 1 and "already exists" in clash.stderr
    baked = tmp_path / "baked"
    ok(
        invoke(
            "export-mask", tmp_path / "back.safetensors", "--bake", "--model", tiny_bert_dir, "--out", baked, "--json"
        )
    )
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(baked)  # OUT itself is the checkpoint
    q = model.bert.encoder.layer[0].attention.self.query.weight
    assert (q == 0).float().mean().item() == pytest.approx(0.5, abs=2e-3)


def test_sparse_commands_reject_bad_masks(tiny_bert_dir, tiny_roberta_dir, synth_dir, imp_run, tmp_path):
    out, _ = imp_run
    wrong_model = invoke(
        "evaluate",
        "--model",
        tiny_roberta_dir,
        "--mask",
        out / "masks" / "level-0.50.safetensors",
        "--task",
        "mnli",
        "--data-dir",
        synth_dir,
    )
    assert wrong_model.exit_code == 1 and "mask key bert.encoder.layer.0" in wrong_model.stderr
    assert "Traceback" not in wrong_model.output
    no_level = invoke(
        "retrain",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--mask",
        out,
        "--sparsity",
        "0.55",
        "--data-dir",
        synth_dir,
        "--out",
        tmp_path / "x",
    )
    assert no_level.exit_code == 1 and "no mask found" in no_level.stderr and "level-0.50" in no_level.stderr
    assert not (tmp_path / "x").exists()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    bad = invoke("export-mask", corrupt)
    assert bad.exit_code == 1 and "not a readable safetensors file" in bad.stderr
    high = invoke("mask-train", "--task", "mnli", "--model", tiny_bert_dir, "--sparsity", "1.0", "--dry-run")
    assert high.exit_code == 2 and "mask.sparsity" in high.stderr


def test_mask_train_with_ood_data_adds_hans_train_copies(tiny_bert_dir, synth_dir, tmp_path):
    out = tmp_path / "ood"
    results = ok(
        invoke(
            "mask-train",
            "--task",
            "mnli",
            "--loss",
            "ce",
            "--model",
            tiny_bert_dir,
            "--data-dir",
            synth_dir,
            "--train-with",
            "hans",
            "--set",
            "search.ood_copies=2",
            "--out",
            out,
            "--set",
            "train.max_steps=4",
            "--set",
            "eval.every=2",
            *FAST,
            "--json",
        )
    )
    assert results["data"]["ood_train"] == {"hans_train": 2 * 48}
    poe = invoke(
        "mask-train",
        "--task",
        "mnli",
        "--loss",
        "poe",
        "--bias",
        "b.json",
        "--train-with",
        "hans",
        "--model",
        tiny_bert_dir,
        "--dry-run",
    )
    assert poe.exit_code == 2 and "--loss ce only" in poe.stderr


def test_timing_study_masks_an_intermediate_checkpoint(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    ft = tmp_path / "ft"
    ok(
        invoke(
            "finetune",
            "--task",
            "mnli",
            "--model",
            tiny_bert_dir,
            "--data-dir",
            synth_dir,
            "--save-every",
            "3",
            "--out",
            ft,
            "--set",
            "train.max_steps=6",
            "--set",
            "eval.every=6",
            *FAST,
            "--json",
        )
    )
    assert sorted(p.name for p in (ft / "checkpoints").iterdir()) == ["step-3", "step-6"]
    results = ok(
        invoke(
            "mask-train",
            "--preset",
            "timing-poe-mnli",
            "--model",
            ft / "checkpoints" / "step-3",
            "--bias",
            bias_file,
            "--data-dir",
            synth_dir,
            "--out",
            tmp_path / "t",
            "--set",
            "train.max_steps=3",
            "--set",
            "eval.every=3",
            *FAST,
            "--json",
        )
    )
    assert results["sparsity"]["sparsity"] == pytest.approx(0.7, abs=2e-3)


def test_imp_levels_and_rewind_step_checks(tiny_bert_dir, synth_dir, tmp_path):
    from srnet_cli.recipes.imp import levels

    assert levels(0.1, 0.9) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert levels(0.2, 0.8) == pytest.approx([0.2, 0.4, 0.6, 0.8])
    late = invoke(
        "imp",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--rewind",
        "5",
        "--out",
        tmp_path / "late",
        "--set",
        "train.max_steps=20",
        *FAST,
    )
    assert late.exit_code == 2 and "after the first level's 2 steps" in late.stderr
    assert not (tmp_path / "late").exists()
    bad = invoke("imp", "--task", "mnli", "--model", tiny_bert_dir, "--rewind", "later", "--dry-run")
    assert bad.exit_code == 2 and "imp: rewind must be none, pretrained or a step" in bad.stderr


def test_same_seed_same_machine_gives_identical_masks_and_metrics(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    """Determinism: two mask-train and two finetune runs with one seed agree exactly; another seed differs."""
    args = [
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--bias",
        bias_file,
        "--sparsity",
        "0.5",
        "--set",
        "train.max_steps=6",
        "--set",
        "eval.every=3",
        "--set",
        "train.lr=0.01",
        *FAST,
        "--json",
    ]
    runs = [
        ok(invoke("mask-train", "--task", "mnli", "--loss", "poe", *args, "--seed", seed, "--out", tmp_path / f"m{i}"))
        for i, seed in enumerate(("4", "4", "5"))
    ]
    masks = [load_mask_file(tmp_path / f"m{i}" / "masks" / "last.safetensors").masks for i in range(3)]
    assert runs[0]["metrics"] == runs[1]["metrics"]
    assert masks[0].keys() == masks[1].keys() and all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])
    assert any(not torch.equal(masks[0][k], masks[2][k]) for k in masks[0])  # the seed matters (data order)

    tune = [
        "finetune",
        "--task",
        "mnli",
        "--model",
        tiny_bert_dir,
        "--data-dir",
        synth_dir,
        "--seed",
        "7",
        "--set",
        "train.max_steps=4",
        *FAST,
        "--json",
    ]
    first, second = (ok(invoke(*tune, "--out", tmp_path / f"f{i}")) for i in range(2))
    assert first["metrics"] == second["metrics"]
    weights = [load_file(tmp_path / f"f{i}" / "model" / "model.safetensors") for i in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_retrain_names_the_search_that_found_its_mask():
    from srnet_cli.recipes.finetune import mask_method
    from srnet_cli.recipes.naming import method_of
    from srnet_cli.recipes.results import RunResults

    base = {"command": "mask-train", "loss": "ce", "target_sparsity": 0.5}
    assert mask_method(base | {"initial_sparsity": 0.5}) == "mask-train ce"
    assert mask_method(base | {"initial_sparsity": 0.3}) == "mask-train ce (gradual from 30%)"
    assert mask_method(base | {"ood_train": True, "initial_sparsity": 0.5}) == "mask-train ce + OOD data"
    assert mask_method({"command": "imp", "loss": "poe", "rewind": "pretrained"}) == "lottery-ticket IMP poe"
    assert mask_method({}) is None  # a mask from the original project: no provenance
    checkpoint = base | {"initial_sparsity": 0.5, "model": "runs/ce/checkpoints/step-2000"}  # the timing study
    assert mask_method(checkpoint) == "mask-train ce (from step 2000)"
    retrained = RunResults(command="retrain", loss="ce", mask_method="mask-train ce + OOD data", task="mnli", model="m",
                           seed=1, out="o", steps=1, data={})  # fmt: skip
    assert method_of(retrained) == "retrain ce (mask-train ce + OOD data mask)"
