"""Structured SRNets: head and neuron groups, their selection, N:M masks, compact models (logits equal to the
masked model's in every family that supports them), and the commands end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from families import FAMILY_MODELS, SIZE
from test_resume import FAST, assert_same_run, invoke, killed
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.sparse.groups import GroupIndex, build_groups, magnitudes, select
from srnet_cli.engine.sparse.masks import apply_masks, inject_masks, is_nm, nm_mask, unwrap
from srnet_cli.engine.sparse.structure import structure_of

runner = CliRunner()


def _tiny(model_type: str = "bert", **overrides):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    size = {} if model_type == "distilbert" else dict(SIZE)
    special = {"bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    special = special if model_type == "modernbert" else {}
    config = AutoConfig.for_model(model_type, vocab_size=100, num_labels=3, pad_token_id=0, **size, **special,
                                  **overrides)  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


def test_groups_partition_every_encoder_weight_of_a_bert():
    model = _tiny()
    structure = structure_of(model)
    index = build_groups(model, structure, "head+neuron")
    # 2 layers x (2 heads + 64 neurons); a head holds 3 x 16 rows of 32 and 16 columns of 32, a neuron 2 x 32
    assert index.count == 2 * (2 + 64)
    assert index.kinds.count("head") == 4 and index.kinds.count("neuron") == 128
    heads = index.sizes[[g for g in range(index.count) if index.kinds[g] == "head"]]
    neurons = index.sizes[[g for g in range(index.count) if index.kinds[g] == "neuron"]]
    assert set(heads.tolist()) == {4 * 16 * 32} and set(neurons.tolist()) == {2 * 32}
    assert float(index.sizes.sum()) == sum(index.layer_weights) == 2 * (4 * 32 * 32 + 2 * 32 * 64)
    empty = index.expand(torch.zeros(index.count, dtype=torch.bool))
    assert all(not bool(m.any()) for m in empty.values())  # every encoder weight is in exactly one group


def test_group_magnitude_is_the_rms_of_its_slices():
    model = _tiny()
    index = build_groups(model, structure_of(model), "head+neuron")
    layer = model.bert.encoder.layer[1]
    att = layer.attention
    head = 1  # rows 16..31 of Q, K, V, columns 16..31 of the attention output
    parts = [m.weight[16:32] for m in (att.self.query, att.self.key, att.self.value)]
    parts = [p.detach().double() for p in (*parts, att.output.dense.weight[:, 16:32])]
    expected_head = math.sqrt(sum(float((p**2).sum()) for p in parts) / sum(p.numel() for p in parts))
    neuron = 5
    parts = [layer.intermediate.dense.weight[neuron], layer.output.dense.weight[:, neuron]]
    parts = [p.detach().double() for p in parts]
    expected_neuron = math.sqrt(sum(float((p**2).sum()) for p in parts) / 64)
    weights = {n: model.get_submodule(n.removesuffix(".weight")).weight for n in index.rows}
    scores = magnitudes(index, weights)
    g_head = [g for g in range(index.count) if index.layers[g] == 1 and index.kinds[g] == "head"][head]
    g_neuron = [g for g in range(index.count) if index.layers[g] == 1 and index.kinds[g] == "neuron"][neuron]
    assert float(scores[g_head]) == pytest.approx(expected_head, rel=1e-9)
    assert float(scores[g_neuron]) == pytest.approx(expected_neuron, rel=1e-9)


def _index(kinds, layers, sizes, weights):
    return GroupIndex(tuple(kinds), tuple(layers), torch.tensor(sizes, dtype=torch.float64), {}, {}, tuple(weights))


def test_selection_by_hand():
    # one layer of 100 weights: head 0 (40), head 1 (40), neurons 2-4 (10 each); 30% = 30 weights
    index = _index(["head", "head", "neuron", "neuron", "neuron"], [0] * 5, [40, 40, 10, 10, 10], [100])
    scores = torch.tensor([0.1, 0.9, 0.2, 0.3, 0.8])
    keep, threshold = select(index, scores, 0.3, "layer")
    # protected: head 1 (best head), neuron 4 (best neuron). Walk 0.1 (head 0: 40 > 30 + 20? no -> removed, 40),
    # then neuron 2 (40 + 10 > 30 + 5: stop). Removed 40 of the target 30: the closest a 40-weight head allows.
    assert keep.tolist() == [False, True, True, True, True]
    assert threshold.tolist() == pytest.approx([0.1] * 5)
    keep, _ = select(index, scores, 0.19, "layer")  # 19: a 40-weight head would overshoot by 21 > half its size
    assert keep.tolist() == [True] * 5
    # already removed groups count first (IMP's next level): head 0 gone, 50% = 50: neuron 2 (+10) fits, then stop
    keep, _ = select(index, scores, 0.5, "layer", removed=torch.tensor([True, False, False, False, False]))
    assert keep.tolist() == [False, True, False, True, True]


def test_selection_budget_per_layer_or_global():
    index = _index(["neuron"] * 6, [0, 0, 0, 1, 1, 1], [10] * 6, [30, 30])
    scores = torch.tensor([0.1, 0.2, 0.9, 0.3, 0.4, 0.8])
    per_layer, _ = select(index, scores, 1 / 3, "layer")  # 10 weights in each layer
    assert per_layer.tolist() == [False, True, True, False, True, True]
    overall, _ = select(index, scores, 1 / 3, "global")  # 20 weights anywhere: the two smallest scores
    assert overall.tolist() == [False, False, True, True, True, True]


def test_nm_mask_by_hand():
    values = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.5, 0.1, 0.2, 0.9]])
    assert nm_mask(values, 2, 4).tolist() == [[True, False, True, False, True, False, False, True]]
    assert is_nm(nm_mask(torch.rand(6, 16), 2, 4), 2, 4)
    assert not is_nm(torch.ones(2, 8, dtype=torch.bool), 2, 4)


@pytest.mark.parametrize(("name", "model_type", "overrides"), FAMILY_MODELS, ids=[f[0] for f in FAMILY_MODELS])
def test_compact_logits_equal_the_masked_model_in_every_family(name, model_type, overrides):
    from srnet_cli.engine.sparse.compact import HEADS_REMOVABLE, cut

    model = _tiny(model_type, **overrides)
    structure = structure_of(model)
    heads = structure.family.name in HEADS_REMOVABLE
    index = build_groups(model, structure, "head+neuron" if heads else "neuron")
    generator = torch.Generator().manual_seed(1)
    keep = torch.rand(index.count, generator=generator) > 0.4
    for layer in range(len(structure.layers)):
        members = [g for g in range(index.count) if index.layers[g] == layer]
        for kind in ("head", "neuron"):
            of_kind = [g for g in members if index.kinds[g] == kind]
            if of_kind:
                keep[of_kind[0]] = True
        if heads:
            keep[[g for g in members if index.kinds[g] == "head"][1]] = layer != 0  # layer 0 loses a head
    masks = index.expand(keep)
    inject_masks(model, [n.removesuffix(".weight") for n in masks])
    apply_masks(model, masks)
    tokens = torch.randint(3, 100, (2, 12))
    with torch.no_grad():
        masked = model(input_ids=tokens).logits
        unwrap(model)
        layout = cut(model, structure, index, keep)
        compact = model(input_ids=tokens).logits
    assert torch.allclose(masked, compact, atol=1e-5), float((masked - compact).abs().max())
    if heads and structure.family.name != "albert":
        assert layout.heads[0] == structure.num_heads - 1
    assert sum(layout.neurons) == sum(bool(keep[g]) for g in range(index.count) if index.kinds[g] == "neuron")


def test_heads_are_refused_where_the_attention_cannot_lose_them():
    from srnet_cli.engine.sparse.compact import cut
    from srnet_cli.errors import MaskError

    model = _tiny("mpnet")
    structure = structure_of(model)
    index = build_groups(model, structure, "head+neuron")
    keep = torch.ones(index.count, dtype=torch.bool)
    keep[index.kinds.index("head")] = False
    with pytest.raises(MaskError, match="cannot cut heads out of a mpnet model"):
        cut(model, structure, index, keep)


def _base(tiny_bert_dir, synth_dir, *extra):
    return ["--task", "mnli", "--model", tiny_bert_dir, "--data-dir", synth_dir, *extra, *FAST]


@pytest.fixture(scope="module")
def ce_model(tiny_bert_dir, synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("structured") / "ce"
    invoke("finetune", *_base(tiny_bert_dir, synth_dir, "--set", "train.max_steps=30", "--set", "eval.every=15"),
           "--set", "train.lr=2e-3", "--out", out)  # fmt: skip
    return out / "model"


def test_structured_imp_and_mask_training_make_compact_models(ce_model, synth_dir, bias_file, tmp_path):
    from safetensors.torch import load_file

    from srnet_cli.engine.sparse.compact import COMPACT_FILE, load_compact
    from srnet_cli.engine.sparse.mask_io import load_mask_file

    grouped = ["--set", "mask.granularity=head+neuron"]
    imp = invoke("imp", *_base(ce_model, synth_dir, "--sparsity", "0.5", "--set", "imp.rate=0.25", *grouped,
                 "--set", "train.max_steps=8"), "--out", tmp_path / "imp")  # fmt: skip
    assert [round(level["level"], 2) for level in imp["levels"]] == [0.25, 0.5]
    search = invoke("mask-train", *_base(ce_model, synth_dir, "--loss", "poe", "--bias", bias_file, "--sparsity",
                    "0.5", *grouped, "--set", "train.max_steps=8", "--set", "eval.every=4", "--set",
                    "search.select_after=0", "--set", "train.lr=0.05"), "--out", tmp_path / "mt")  # fmt: skip
    model = load_compact_check = None
    searched = [
        (tmp_path / "imp" / "masks" / "level-0.50.safetensors", imp["levels"][-1]["sparsity"]),
        (tmp_path / "mt" / "masks" / "best.safetensors", search["sparsity"]["sparsity"]),
    ]
    for run, sparsity in searched:
        mask = load_mask_file(run)
        assert mask.meta["granularity"] == "head+neuron"
        index_model = _loaded(ce_model)
        structure = structure_of(index_model)
        index = build_groups(index_model, structure, "head+neuron")
        half_group = float(index.sizes.max()) / min(index.layer_weights) / 2
        assert abs(sparsity - 0.5) <= half_group + 1e-9  # as close as whole groups allow
        keep = index.keep_of(mask.masks)  # whole heads and neurons, nothing else
        assert not bool(keep.all())
        out = tmp_path / f"compact-{run.parent.parent.name}"
        result = runner.invoke(app, ["export-mask", str(run), "--compact", "--model", str(ce_model), "--out",
                                     str(out), "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        info = json.loads(result.stdout)
        assert info["parameters"] < info["dense_parameters"] and info["max_logit_difference"] <= 1e-5
        dense_bytes = sum(p.stat().st_size for p in ce_model.glob("*.safetensors"))
        assert sum(p.stat().st_size for p in out.glob("*.safetensors")) < dense_bytes
        assert (out / COMPACT_FILE).is_file() or info["stock_config"]
        model = load_compact_check = out
        tensors = load_file(str(next(out.glob("*.safetensors"))))
        assert sum(t.numel() for t in tensors.values()) == info["parameters"]
        # evaluate reads the compact model, and its numbers are the masked model's
        masked = invoke("evaluate", *_evaluate(ce_model, synth_dir, "--mask", run))
        compact = invoke("evaluate", *_evaluate(out, synth_dir))
        assert compact["metrics"] == masked["metrics"]
        if not info["stock_config"]:
            assert load_compact(out).num_parameters() == info["parameters"]
    # a compact model is a starting point for the sparse commands too
    assert model is not None and load_compact_check is not None
    again = invoke("mask-train", *_base(model, synth_dir, "--sparsity", "0.3", "--set", "train.max_steps=4",
                   "--set", "eval.every=4", "--set", "search.select_after=0"), "--out", tmp_path / "again")  # fmt: skip
    assert again["sparsity"]["sparsity"] == pytest.approx(0.3, abs=0.01)


def _evaluate(model, synth_dir, *extra):
    return ["--task", "mnli", "--model", model, "--data-dir", synth_dir, *extra, "--device", "cpu", "--json", "-q"]


def _loaded(path):
    from srnet_cli.engine.training.models import load_classifier

    return load_classifier(str(path))


def test_two_four_masks_are_exact_for_imp_and_mask_training(ce_model, synth_dir, tmp_path):
    from srnet_cli.engine.sparse.mask_io import load_mask_file

    nm = ["--set", "mask.granularity=2:4", "--sparsity", "0.5"]
    invoke("imp", *_base(ce_model, synth_dir, *nm, "--set", "imp.rate=0.5", "--set", "train.max_steps=4"),
           "--out", tmp_path / "imp")  # fmt: skip
    invoke("mask-train", *_base(ce_model, synth_dir, *nm, "--set", "train.max_steps=6", "--set", "eval.every=3",
           "--set", "search.select_after=0", "--set", "train.lr=0.05"), "--out", tmp_path / "mt")  # fmt: skip
    for path in (tmp_path / "imp" / "masks" / "level-0.50.safetensors", tmp_path / "mt" / "masks" / "best.safetensors"):
        masks = load_mask_file(path).masks
        assert masks and all(is_nm(m, 2, 4) for m in masks.values()), path
    semi = runner.invoke(app, ["export-mask", str(tmp_path / "mt"), "--semi-structured", "--model", str(ce_model),
                               "--out", str(tmp_path / "semi")])  # fmt: skip
    if not torch.cuda.is_available():
        assert semi.exit_code == 2 and "every matrix is exactly 2:4, but converting it needs a CUDA GPU" in semi.output
        assert not (tmp_path / "semi").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mask-train", "--sparsity", "0.6", "--set", "mask.granularity=2:4"], "pass --sparsity 0.5"),
        (["imp", "--sparsity", "0.5", "--set", "mask.granularity=2:4"], "pass --set imp.rate=0.5"),
        (["mask-train", "--set", "mask.granularity=2:4", "--initial-sparsity", "0.3"], "no gradual schedule"),
        (["mask-train", "--set", "mask.granularity=rows"], "use weight, head, neuron, head+neuron or N:M"),
        (["imp", "--set", "mask.granularity=head", "--set", "mask.include_pooler=false"], "the pooler stays dense"),
        (
            ["mask-train", "--set", "mask.granularity=1:4", "--sparsity", "0.75", "--set", "mask.scope=global"],
            "keeps N of every M weights",
        ),
    ],
)
def test_structured_settings_that_cannot_work_are_refused(args, message):
    result = runner.invoke(app, [*args, "--task", "mnli", "--dry-run"])
    assert result.exit_code == 2 and message in result.output, result.output


def test_compact_export_refuses_an_unstructured_mask(ce_model, synth_dir, tmp_path):
    invoke("mask-train", *_base(ce_model, synth_dir, "--sparsity", "0.5", "--set", "train.max_steps=2",
           "--set", "eval.every=2", "--set", "search.select_after=0"), "--out", tmp_path / "mt")  # fmt: skip
    result = runner.invoke(app, ["export-mask", str(tmp_path / "mt"), "--compact", "--model", str(ce_model),
                                 "--out", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code != 0 and "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists()


def test_structured_mask_training_resumes_exactly(tiny_bert_dir, synth_dir, tmp_path):
    args = ["mask-train", *_base(tiny_bert_dir, synth_dir, "--sparsity", "0.5", "--initial-sparsity", "0.2",
            "--set", "mask.granularity=head+neuron", "--set", "train.max_steps=12", "--set", "eval.every=4",
            "--set", "train.lr=0.05", "--set", "search.select_after=0")]  # fmt: skip
    ref = invoke(*args, "--out", tmp_path / "ref")
    out = tmp_path / "run"
    killed([*args, "--out", out], "kill@evaluated:2")
    assert_same_run(tmp_path / "ref", out, ref, invoke(*args, "--out", out, "--resume"))


def test_compact_retraining_is_the_masked_retraining_on_a_smaller_model(ce_model, synth_dir, bias_file, tmp_path):
    """retrain --compact trains the cut model: without dropout (the only draws whose shapes change), its weights
    after training are the masked retraining's kept weights, its saved model loads as a compact one, and it
    reports the mask's sparsity."""
    import shutil

    from srnet_cli.engine.sparse.compact import COMPACT_FILE, read_layout
    from srnet_cli.engine.sparse.mask_io import load_mask_file

    still = tmp_path / "ce-no-dropout"
    shutil.copytree(ce_model, still)
    config = json.loads((still / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (still / "config.json").write_text(json.dumps(config))
    invoke("mask-train", *_base(still, synth_dir, "--loss", "poe", "--bias", bias_file, "--sparsity", "0.5",
           "--set", "mask.granularity=head+neuron", "--set", "train.max_steps=8", "--set", "eval.every=4",
           "--set", "search.select_after=0", "--set", "train.lr=0.05"), "--out", tmp_path / "mt")  # fmt: skip
    mask = tmp_path / "mt" / "masks" / "best.safetensors"
    retrain = ["--mask", str(mask), "--set", "train.max_steps=6", "--set", "eval.every=6", "--set", "train.lr=1e-3"]
    masked = invoke("retrain", *_base(still, synth_dir, *retrain), "--out", tmp_path / "masked")
    compact = invoke("retrain", *_base(still, synth_dir, *retrain, "--compact"), "--out", tmp_path / "compact")
    assert compact["sparsity"] == masked["sparsity"]
    assert compact["metrics"] == masked["metrics"]
    layout = read_layout(tmp_path / "compact" / "model")
    assert layout is not None and (tmp_path / "compact" / "model" / COMPACT_FILE).is_file()
    small, full = _loaded(tmp_path / "compact" / "model"), _loaded(tmp_path / "masked" / "model")
    assert small.num_parameters() < full.num_parameters()
    structure = structure_of(full)
    index = build_groups(full, structure, "head+neuron")
    keep = index.keep_of({k: v for k, v in load_mask_file(mask).masks.items() if k in index.rows})
    kept = index.expand(keep)
    compared = 0
    for name, weight in full.named_parameters():
        if name in kept:  # the kept weights, in the compact model's (row, column) order
            rows, cols = kept[name].any(dim=1), kept[name].any(dim=0)
            expected = weight.detach()[rows][:, cols]
            got = dict(small.named_parameters())[name].detach()
            assert torch.allclose(got, expected, atol=1e-5), name
            compared += 1
    assert compared == len(index.rows)
    evaluated = invoke("evaluate", *_evaluate(tmp_path / "compact" / "model", synth_dir))
    assert evaluated["metrics"]["dev_matched"] == compact["metrics"]["dev_matched"]


def test_compact_retraining_refuses_an_unstructured_mask(ce_model, synth_dir, tmp_path):
    invoke("imp", *_base(ce_model, synth_dir, "--sparsity", "0.2", "--set", "imp.rate=0.2", "--set",
           "train.max_steps=4"), "--out", tmp_path / "imp")  # fmt: skip
    out = tmp_path / "rt"
    result = runner.invoke(app, ["retrain", *_base(ce_model, synth_dir, "--mask", str(tmp_path / "imp"),
                                 "--sparsity", "0.2", "--compact"), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2
    assert "part of a head or neuron" in result.output and "hint:" in result.output
    assert not out.exists()  # refused before anything is written


def test_compact_retraining_resumes_exactly(ce_model, synth_dir, tmp_path):
    """A killed `retrain --compact` resumes into the same compact model: its checkpoint holds the cut shapes."""
    invoke("mask-train", *_base(ce_model, synth_dir, "--sparsity", "0.5", "--set", "mask.granularity=head+neuron",
           "--set", "train.max_steps=4", "--set", "eval.every=4", "--set", "search.select_after=0",
           "--set", "train.lr=0.05"), "--out", tmp_path / "mt")  # fmt: skip
    mask = str(tmp_path / "mt" / "masks" / "best.safetensors")
    args = ["retrain", *_base(ce_model, synth_dir, "--mask", mask, "--compact", "--set", "train.max_steps=12",
            "--set", "eval.every=4", "--set", "train.checkpoint_every=4")]  # fmt: skip
    ref = invoke(*args, "--out", tmp_path / "ref")
    out = tmp_path / "run"
    killed([*args, "--out", out], "kill@evaluated:2")
    assert_same_run(tmp_path / "ref", out, ref, invoke(*args, "--out", out, "--resume"))
    assert (out / "model" / "srnet_compact.json").is_file()
