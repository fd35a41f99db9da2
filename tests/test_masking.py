"""The masking engine against independent computations: torch's pruning, hand-computed values, plain HF models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from srnet_cli.config.schedules import cubic_sparsity
from srnet_cli.engine.sparse.mask_io import MaskFile, load_mask_file, pack, save_mask_file, unpack
from srnet_cli.engine.sparse.masks import (
    BinarizeSTE,
    MaskedLinear,
    apply_masks,
    inject_masks,
    inject_named,
    masked_modules,
    masks_state,
    sparsity_summary,
    unwrap,
)
from srnet_cli.engine.sparse.pruning import (
    apply_level,
    init_scores,
    magnitude_masks,
    recalibrate,
    rewind,
    snapshot,
)
from srnet_cli.engine.sparse.structure import structure_of
from srnet_cli.errors import MaskError


def load(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path).eval()


def inputs(n=4, length=10, vocab=40):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def targets(model, include_pooler=True, include_classifier=True):
    return structure_of(model).targets(include_pooler, include_classifier)


def paper_masks(model):
    return inject_masks(model, targets(model))


def test_targets_are_the_papers_for_bert_and_roberta(tiny_bert_dir, tiny_roberta_dir):
    bert = paper_masks(load(tiny_bert_dir))
    assert len(bert) == 2 * 6 + 2  # 6 matrices per layer, pooler, classifier
    assert "bert.pooler.dense" in bert and "classifier" in bert
    assert "bert.encoder.layer.1.attention.self.query" in bert and "bert.encoder.layer.0.output.dense" in bert
    assert not any("embeddings" in n for n in bert)
    roberta = paper_masks(load(tiny_roberta_dir))
    assert len(roberta) == 2 * 6 + 2 and {"classifier.dense", "classifier.out_proj"} <= set(roberta)
    bert_model = load(tiny_bert_dir)
    without_head = inject_masks(bert_model, targets(bert_model, True, False))
    assert len(without_head) == 13 and "classifier" not in without_head


def test_injection_keeps_parameter_names_and_objects(tiny_bert_dir):
    model = load(tiny_bert_dir)
    before = {name: p for name, p in model.named_parameters()}
    paper_masks(model)
    after = dict(model.named_parameters())
    assert set(after) == set(before) and all(after[n] is before[n] for n in before)
    assert set(model.state_dict()) == set(load(tiny_bert_dir).state_dict())  # masks are not persistent buffers


def test_injecting_a_module_that_is_not_a_linear_is_an_error():
    with pytest.raises(MaskError, match="not a plain linear"):
        inject_masks(nn.Sequential(nn.Linear(3, 3)), ["1"])


def test_all_ones_mask_equals_the_unmasked_model(tiny_bert_dir):
    plain, masked = load(tiny_bert_dir), load(tiny_bert_dir)
    paper_masks(masked)
    apply_masks(masked, {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in masked_modules(masked).items()})
    assert torch.equal(plain(**inputs()).logits, masked(**inputs()).logits)
    init_scores(masked, 0.0, "hard")  # learnable scores at sparsity 0 keep every weight too
    assert torch.allclose(plain(**inputs()).logits, masked(**inputs()).logits, atol=1e-6)


def test_baked_checkpoint_gives_the_masked_logits(tiny_roberta_dir, tmp_path):
    model = load(tiny_roberta_dir)
    paper_masks(model)
    init_scores(model, 0.6, "soft")
    expected = model(**inputs()).logits
    masks = masks_state(model)
    unwrap(model)
    assert not any(isinstance(m, MaskedLinear) for m in model.modules())
    model.save_pretrained(tmp_path / "baked")
    baked = load(tmp_path / "baked")
    assert torch.allclose(baked(**inputs()).logits, expected, atol=1e-6)
    q = baked.roberta.encoder.layer[0].attention.self.query.weight
    assert torch.equal(q == 0, ~masks["roberta.encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.7, 0.9])
def test_achieved_sparsity_is_exact_per_layer(tiny_bert_dir, sparsity):
    model = load(tiny_bert_dir)
    paper_masks(model)
    apply_level(model, sparsity)
    for name, module in masked_modules(model).items():
        n = module.weight.numel()
        assert int((~module.mask).sum()) == round(n * sparsity), name
        assert int((module.weight == 0).sum()) == round(n * sparsity), name  # pruned weights are zero in place
    init_scores(model, sparsity, "soft")
    for name, mask in masks_state(model).items():
        assert int((~mask).sum()) == round(mask.numel() * sparsity), name


def test_global_scope_is_exact_overall_and_uneven_per_layer():
    g = torch.Generator().manual_seed(1)
    weights = {"a": torch.randn(10, 10, generator=g) * 0.1, "b": torch.randn(20, 10, generator=g)}
    masks = magnitude_masks(weights, 0.5, "global")
    assert int(sum((~m).sum() for m in masks.values())) == 150
    assert (~masks["a"]).float().mean() > 0.9  # the small-magnitude matrix loses nearly everything
    # Layer-wise: exactly half of each.
    assert [int((~m).sum()) for m in magnitude_masks(weights, 0.5, "layer").values()] == [50, 100]


def test_imp_first_level_equals_torch_l1_unstructured(tiny_bert_dir):
    """An independent implementation: torch.nn.utils.prune.l1_unstructured per layer at 10%."""
    from torch.nn.utils import prune

    reference = load(tiny_bert_dir)
    model = load(tiny_bert_dir)
    inject_masks(model, targets(model, True, False))
    apply_level(model, 0.1)
    ours = masks_state(model)
    for name in ours:
        module = reference.get_submodule(name.removesuffix(".weight"))
        prune.l1_unstructured(module, "weight", amount=0.1)
        assert torch.equal(ours[name], module.weight_mask.bool()), name


def test_imp_prunes_the_remaining_weights_only():
    weights = {"w": torch.tensor([[0.1, -5.0, 0.2, 3.0, -0.05]])}
    current = {"w": torch.tensor([[True, False, True, True, True]])}  # the large -5.0 is already pruned
    mask = magnitude_masks(weights, 0.4, "layer", current)["w"]
    assert mask.tolist() == [[True, False, True, True, False]]  # + the smallest remaining (-0.05); 2 of 5 pruned


def test_rewinding_restores_saved_values_bit_for_bit(tiny_bert_dir):
    model = load(tiny_bert_dir)
    inject_masks(model, targets(model, True, False))
    saved = snapshot(model)
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model.train()
    model(**inputs(), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    optimizer.step()  # in-place updates: a snapshot that were a view would follow them
    assert not torch.equal(dict(model.named_parameters())["classifier.weight"], original["classifier.weight"])
    rewind(model, saved)
    for name, p in model.named_parameters():
        assert torch.equal(p, original[name]), name
    apply_level(model, 0.3)
    rewind(model, saved)  # after a prune, rewinding keeps the pruned weights at zero
    for name, m in masked_modules(model).items():
        assert torch.equal(m.weight, original[name] * m.mask), name


def test_cubic_schedule_values():
    assert cubic_sparsity(0, 100, 0.7, 0.9) == pytest.approx(0.7)
    assert cubic_sparsity(50, 100, 0.7, 0.9) == pytest.approx(0.9 - 0.2 * 0.5**3)  # 0.875
    assert cubic_sparsity(100, 100, 0.7, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(150, 100, 0.7, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(25, 100, 0.7, 0.9, end_fraction=0.5) == pytest.approx(0.875)
    assert cubic_sparsity(10, 100, 0.5, 0.5) == 0.5  # fixed sparsity


def test_hard_init_is_the_magnitude_mask_with_scores_0_and_2phi(tiny_bert_dir):
    model = load(tiny_bert_dir)
    paper_masks(model)
    expected = magnitude_masks({n: m.weight for n, m in masked_modules(model).items()}, 0.5)
    init_scores(model, 0.5, "hard")
    for name, m in masked_modules(model).items():
        assert torch.all((m.scores == 0) | (m.scores == torch.tensor(0.02))) and float(m.threshold) == pytest.approx(
            0.01
        )
        assert torch.equal(m.current_mask(), expected[name]), name
        assert m.weight.count_nonzero() == m.weight.numel()  # frozen weights are not zeroed by mask training


def test_recalibration_restores_top_k_per_matrix():
    layer = MaskedLinear(nn.Linear(4, 2))
    layer.set_scores(torch.tensor([[0.5, 0.1, 0.9, 0.3], [0.2, 0.8, 0.05, 0.7]]), 0.01)
    model = nn.Sequential(layer)
    recalibrate(model, 0.5)
    assert layer.current_mask().tolist() == [[True, False, True, False], [False, True, False, True]]
    recalibrate(model, 0.25)  # k = 2 smallest (0.05, 0.1) pruned
    assert int((~layer.current_mask()).sum()) == 2 and float(layer.threshold) == pytest.approx(0.1)


def test_global_recalibration_is_one_threshold_over_every_matrix():
    """scope=global: the k smallest scores of all matrices together are pruned (k = round(n·s) over all n), so
    the sparsity is exact overall and uneven per matrix; by hand: scores 0.05..0.9 and 0.15..0.6, s = 0.5."""
    small, large = MaskedLinear(nn.Linear(2, 2)), MaskedLinear(nn.Linear(3, 2))
    small.set_scores(torch.tensor([[0.5, 0.1], [0.9, 0.3]]), 0.01)
    large.set_scores(torch.tensor([[0.2, 0.8, 0.05], [0.7, 0.15, 0.6]]), 0.01)
    model = nn.Sequential(small, large)
    recalibrate(model, 0.5, scope="global")  # 10 scores, 5 pruned: 0.05, 0.1, 0.15, 0.2, 0.3
    assert float(small.threshold) == pytest.approx(0.3) and float(large.threshold) == pytest.approx(0.3)
    assert small.current_mask().tolist() == [[True, False], [True, False]]
    assert large.current_mask().tolist() == [[False, True, False], [True, False, True]]
    kept = int(small.current_mask().sum() + large.current_mask().sum())
    assert kept == 5 and int(small.current_mask().sum()) != int(large.current_mask().sum())


@pytest.mark.parametrize("every,expected", [(None, [3, 6]), (1, [1, 2, 3, 4, 5, 6]), (2, [2, 4, 6])])
def test_recalibrate_every_sets_when_thresholds_are_reset(
    tiny_bert_dir, synth_dir, tmp_path, monkeypatch, every, expected
):
    """search.recalibrate_every: unset, at every evaluation (eval.every = 3); 1, every step; N, every N steps."""
    from srnet_cli.config.loader import load_preset
    from srnet_cli.engine.runs.context import RunContext
    from srnet_cli.recipes import mask_train

    calls = []
    real = mask_train.recalibrate
    monkeypatch.setattr(mask_train, "recalibrate", lambda *a, **k: (calls.append(1), real(*a, **k)))
    steps = []
    real_cubic = mask_train.cubic_sparsity
    monkeypatch.setattr(mask_train, "cubic_sparsity", lambda step, *a: (steps.append(step), real_cubic(step, *a))[1])
    sets = [
        "train.max_steps=6",
        "eval.every=3",
        "train.batch_size=8",
        "train.warmup_steps=0",
        "train.checkpoint_every=0",
    ]
    if every is not None:
        sets.append(f"search.recalibrate_every={every}")
    preset, _, _ = load_preset(
        "mask-train", None, sets, {"model.name_or_path": str(tiny_bert_dir), "data.dir": str(synth_dir)}
    )
    mask_train.run(preset, RunContext(tmp_path / "run", "cpu"))
    assert steps == expected and len(calls) == len(expected)


def test_ste_gradient_reaches_scores_only_and_equals_the_mask_gradient():
    torch.manual_seed(0)
    linear = nn.Linear(3, 2)
    weight = linear.weight.detach().clone()
    layer = MaskedLinear(linear)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    layer.set_scores(torch.tensor([[0.0, 0.02, 0.02], [0.02, 0.0, 0.02]]), 0.01)
    x = torch.randn(5, 3)
    layer(x).pow(2).sum().backward()
    # Independent: d/dm of sum((x (W*m)^T + b)^2) = (2 y)^T x * W, the STE passes it to the scores unchanged.
    mask = torch.tensor([[0.0, 1, 1], [1, 0, 1]])
    y = x @ (weight * mask).T + linear.bias.detach()
    assert torch.allclose(layer.scores.grad, (2 * y).T @ x * weight, atol=1e-6)
    assert layer.weight.grad is None and layer.bias.grad is None
    assert BinarizeSTE.apply(torch.tensor([0.01, 0.011]), torch.tensor(0.01)).tolist() == [0.0, 1.0]  # strict >


def test_retrain_gradients_reach_weights_and_pruned_weights_stay_zero(tiny_bert_dir):
    model = load(tiny_bert_dir)
    inject_masks(model, targets(model, True, False))
    apply_level(model, 0.5)
    masks = masks_state(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    model.train()
    for _ in range(3):
        model(**inputs(), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        for name, m in masked_modules(model).items():
            assert m.scores is None and m.weight.grad is not None
            assert torch.all(m.weight.grad[~masks[name]] == 0), name
        optimizer.step()
        optimizer.zero_grad()
    for name, m in masked_modules(model).items():
        assert torch.all(m.weight[~masks[name]] == 0) and m.weight[masks[name]].count_nonzero() > 0, name
    assert sparsity_summary(masks_state(model))["sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_pack_unpack_roundtrip():
    mask = torch.rand(7, 13) > 0.4
    packed = pack(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == (91 + 7) // 8
    assert torch.equal(unpack(packed, (7, 13)), mask)


def test_masks_survive_save_load_apply_in_every_format(tiny_bert_dir, tmp_path):
    from safetensors.torch import save_file

    model = load(tiny_bert_dir)
    paper_masks(model)
    init_scores(model, 0.7, "soft")
    masks = masks_state(model)
    expected = model(**inputs()).logits
    classifier = {"classifier.weight": model.classifier.weight.detach().clone()}
    save_mask_file(tmp_path / "m.safetensors", MaskFile(masks, classifier, {"labels": ["a", "b", "c"]}))
    save_file(masks, str(tmp_path / "bool.safetensors"))
    torch.save({k: v.float() for k, v in masks.items()}, tmp_path / "mask.pt")  # original: float 0/1, `.weight`
    torch.save({k + "_mask": v for k, v in masks.items()}, tmp_path / "pruned.pt")  # torch-pruned `.weight_mask`
    for name in ("m.safetensors", "bool.safetensors", "mask.pt", "pruned.pt"):
        loaded = load_mask_file(tmp_path / name)
        assert set(loaded.masks) == set(masks) and all(torch.equal(loaded.masks[k], masks[k]) for k in masks), name
        fresh = load(tiny_bert_dir)
        inject_named(fresh, loaded.masks)
        assert torch.allclose(fresh(**inputs()).logits, expected, atol=1e-6), name
    stored = load_mask_file(tmp_path / "m.safetensors")
    assert torch.equal(stored.weights["classifier.weight"], classifier["classifier.weight"])
    assert stored.meta["labels"] == ["a", "b", "c"] and stored.meta["sparsity"] == pytest.approx(0.7, abs=1e-3)


def test_mask_for_another_model_names_the_first_bad_key(tiny_bert_dir, tiny_roberta_dir):
    bert = load(tiny_bert_dir)
    paper_masks(bert)
    masks = masks_state(bert)
    with pytest.raises(MaskError, match=r"mask key bert\.encoder\.layer\.0\.\S+ is not a linear layer"):
        inject_named(load(tiny_roberta_dir), masks)
    wrong_shape = copy.copy(masks)
    wrong_shape["bert.pooler.dense.weight"] = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(MaskError, match=r"bert\.pooler\.dense\.weight has shape \(3, 3\)"):
        inject_named(load(tiny_bert_dir), wrong_shape)


@pytest.mark.parametrize("pattern", ["weights", "2:4", "head+neuron"])
def test_an_evaluation_multiplies_learnt_masks_once_and_gives_the_same_logits(tiny_bert_dir, pattern):
    """Within `masked_weights_once` a mask being learnt multiplies its weight once for the block, not per batch; the
    logits are those of the training-mode forward's mask (up to the straight-through estimator's rounding), the model's
    state is unchanged, and after the block the scores are read again."""
    from op_names import OpNames

    from srnet_cli.engine.sparse.groups import build_groups
    from srnet_cli.engine.sparse.masks import masked_weights_once
    from srnet_cli.engine.sparse.pruning import WEIGHTS, Pattern

    model = load(tiny_bert_dir)
    paper_masks(model)
    chosen = {
        "weights": WEIGHTS,
        "2:4": Pattern(nm=(2, 4)),
        "head+neuron": Pattern(groups=build_groups(model, structure_of(model), "head+neuron")),
    }[pattern]
    init_scores(model, 0.5, "soft", pattern=chosen)
    model.eval()  # as `predict_logits` runs it (injected modules start in training mode)
    keys = set(model.state_dict())
    x = inputs()
    with torch.inference_mode():
        expected = model(**x).logits
        with masked_weights_once(model):
            assert set(model.state_dict()) == keys and not any(
                n.endswith("_evaluated_weight") for n, _ in model.named_parameters()
            )
            with OpNames() as ops:
                got = [model(**x).logits for _ in range(2)]
        plain = unwrap(copy.deepcopy(model))  # the same products without masks
        with OpNames() as plain_ops:
            plain(**x)
    # no weight ⊙ mask in the forward passes: as many multiplications as the model without masks
    assert ops.names.count("aten.mul") == 2 * plain_ops.names.count("aten.mul")
    assert all(torch.allclose(g, expected, rtol=1e-5, atol=1e-6) for g in got)
    assert all(m._evaluated_weight is None for m in masked_modules(model).values())  # whole again after the block
    if pattern == "weights":  # the binarised mask is exactly 0/1 in both: the same logits to the bit
        assert all(torch.equal(g, expected) for g in got)
    for name, scores in model.named_parameters():
        if name.endswith("scores"):
            scores.data.neg_()  # another mask, which the forward pass reads after the block
    with torch.inference_mode():
        assert not torch.allclose(model(**x).logits, expected)


def test_predict_logits_multiplies_learnt_masks_once_per_evaluation_and_packs_them(tiny_bert_dir, monkeypatch):
    """Through `predict_logits` (three batches, oneDNN forced on): each masked weight is multiplied by its mask and
    packed once for the whole evaluation, not per batch, and the logits are the training-mode mask's."""
    from nli_pairs import encoded_pairs
    from op_names import OpNames

    from srnet_cli.engine.evaluation import cpu_products
    from srnet_cli.engine.training.loop import predict_logits

    if not cpu_products.onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    data = encoded_pairs(tiny_bert_dir, 20)
    model = load(tiny_bert_dir)
    masked = len(paper_masks(model))
    init_scores(model, 0.5, "soft")
    plain = unwrap(copy.deepcopy(model)).eval()
    counts = {}
    for name, m in (("plain", plain), ("masked", model)):
        monkeypatch.setattr(cpu_products, "onednn_faster", lambda: True)
        with OpNames() as ops:
            logits = predict_logits(m, data, 8, "cpu")
        counts[name] = (ops.names.count("aten.mul"), ops.names.count("mkldnn._reorder_linear_weight"), logits)
    linears = sum(isinstance(m, nn.Linear) for m in plain.modules())
    assert counts["plain"][1] == counts["masked"][1] == linears  # each weight packed once for the three batches
    assert counts["masked"][0] == counts["plain"][0] + masked  # W ⊙ m once per masked weight, not per batch
    assert torch.allclose(counts["masked"][2], counts["plain"][2], rtol=1e-5, atol=1e-6)
    # a forward pass that autocasts itself (accelerate wraps a bf16 run's model so) keeps its own bf16 products
    forward = model.forward
    model.forward = torch.autocast("cpu", dtype=torch.bfloat16)(forward)
    with OpNames() as ops:
        bf16 = predict_logits(model, data, 8, "cpu")
    assert "mkldnn._reorder_linear_weight" not in ops.names
    assert torch.allclose(bf16, counts["plain"][2], atol=0.05)
