"""srnet's CPU dropout masks and attention (`engine/training/cpu_paths.py`): the masks have the requested
statistics and are reproducible from torch's seed; the attention gives eager attention's results on both of its
paths, with gradients."""

from __future__ import annotations

import json

import pytest
import torch

from srnet_cli.engine.training.cpu_paths import (
    ATTENTION,
    FUSED_MIN_KEYS,
    CpuDropout,
    cpu_attention,
    cpu_dropout,
    dropout_keep_mask,
)

N = 1_000_000


def test_the_mask_drops_the_rounded_probability_and_scales_to_an_exact_expectation():
    torch.manual_seed(0)
    mask = dropout_keep_mask(torch.Size([1000, 1000]), 0.1, torch.float32)
    # p = 0.1 is 6553.6 / 65536, rounded to 6554; the kept share 58982 / 65536 is scaled back to an expectation of 1
    assert mask.unique().tolist() == [0.0, pytest.approx(65536 / 58982)]
    dropped = (mask == 0).double().mean().item()
    sd = (0.1 * 0.9 / N) ** 0.5
    assert abs(dropped - 6554 / 65536) < 5 * sd
    assert abs(mask.double().mean().item() - 1.0) < 5 * sd * 65536 / 58982
    flat = (mask.flatten() == 0).double()
    # neighbours (which share a 64-bit draw) are independent: both dropped as often as p^2
    both = (flat[:-1] * flat[1:]).mean().item()
    assert abs(both - (6554 / 65536) ** 2) < 5 * (0.01 / N) ** 0.5


@pytest.mark.parametrize(("p", "levels"), [(0.3, 19661), (0.5, 32768), (1e-6, 0)])
def test_the_drop_probability_is_rounded_to_sixteen_bits(p, levels):
    torch.manual_seed(1)
    mask = dropout_keep_mask(torch.Size([N]), p, torch.float32)
    assert mask.max().item() == pytest.approx(65536 / (65536 - levels))
    dropped = (mask == 0).double().mean().item()
    assert abs(dropped - levels / 65536) < 5 * (max(p * (1 - p), 1e-9) / N) ** 0.5 + 1e-9


def test_masks_follow_torch_seed_and_rng_state():
    shape = torch.Size([64, 33])
    torch.manual_seed(3)
    first, second = dropout_keep_mask(shape, 0.2, torch.float32), dropout_keep_mask(shape, 0.2, torch.float32)
    assert not torch.equal(first, second)  # each call draws a new mask
    torch.manual_seed(3)
    assert torch.equal(dropout_keep_mask(shape, 0.2, torch.float32), first)
    state = torch.get_rng_state()  # a resumed run restores this state
    third = dropout_keep_mask(shape, 0.2, torch.float32)
    torch.set_rng_state(state)
    assert torch.equal(dropout_keep_mask(shape, 0.2, torch.float32), third)


def test_dropout_edges_and_gradient():
    x = torch.randn(8, 16, requires_grad=True)
    assert cpu_dropout(x, 0.5, training=False) is x
    assert cpu_dropout(x, 0.0, training=True) is x
    assert torch.equal(cpu_dropout(x, 1.0, training=True), torch.zeros_like(x))
    torch.manual_seed(4)
    y = cpu_dropout(x, 0.25, training=True)
    y.sum().backward()
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] * 65536 / (65536 - 16384))
    assert torch.equal(x.grad, torch.where(kept, 65536 / (65536 - 16384), 0.0))
    module = CpuDropout(0.25).eval()
    assert isinstance(module, torch.nn.Dropout) and torch.equal(module(x), x)


def _eager(query, key, value, mask, scaling, weights_dropout=None):
    weights = torch.softmax(query @ key.transpose(2, 3) * scaling + mask, dim=-1)
    if weights_dropout is not None:
        weights = weights * weights_dropout
    return (weights @ value).transpose(1, 2)


@pytest.mark.parametrize("keys", [12, FUSED_MIN_KEYS + 6])
@pytest.mark.parametrize("training", [False, True])
def test_attention_matches_eager_attention_with_gradients(keys, training):
    """Both paths (plain products; PyTorch's fused kernel from FUSED_MIN_KEYS keys in inference) against the
    formula, with a padded key masked; in training with dropout the mask is the one `dropout_keep_mask` draws."""
    torch.manual_seed(5)
    q, k, v = (torch.randn(2, 3, keys, 8, requires_grad=True) for _ in range(3))
    mask = torch.zeros(2, 1, 1, keys)
    mask[1, ..., -3:] = torch.finfo(torch.float32).min
    module = torch.nn.Module().train(training)
    dropout = 0.2 if training else 0.0
    torch.manual_seed(6)
    out, _ = cpu_attention(module, q, k, v, mask, scaling=0.3, dropout=dropout)
    torch.manual_seed(6)
    drop = dropout_keep_mask(torch.Size([2, 3, keys, keys]), dropout, torch.float32) if training else None
    reference = _eager(q, k, v, mask, 0.3, drop)
    assert torch.allclose(out, reference, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    expected = torch.autograd.grad(reference.square().sum(), (q, k, v))
    assert all(torch.allclose(g, e, atol=1e-4) for g, e in zip(grads, expected, strict=True))


def test_fit_to_device_uses_the_cpu_paths_on_a_cpu_only_and_saved_checkpoints_stay_stock(tiny_bert_dir, tmp_path):
    """On a CPU every nn.Dropout becomes CpuDropout (mode kept) and attention srnet's, with the stock model's logits
    (fp32 exactly, bf16 autocast within bf16 rounding); elsewhere nothing changes; a saved checkpoint names no srnet
    attention, so stock transformers loads it."""
    from transformers import AutoModelForSequenceClassification

    from srnet_cli.engine.runs.devices import fit_to_device
    from srnet_cli.engine.training.models import load_classifier

    torch.manual_seed(0)
    ids = torch.randint(5, 60, (4, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padding must be masked the same way by both
    stock = load_classifier(tiny_bert_dir, ("a", "b", "c")).eval()
    fast = load_classifier(tiny_bert_dir, ("a", "b", "c")).eval()
    fast.load_state_dict(stock.state_dict())
    dropouts = sum(type(m) is torch.nn.Dropout for m in stock.modules())
    assert fit_to_device(fast, "cuda", "bf16").config._attn_implementation == "sdpa"
    assert not any(isinstance(m, CpuDropout) for m in fast.modules())
    assert fit_to_device(fast, torch.device("cpu"), "no").config._attn_implementation == ATTENTION
    swapped = [m for m in fast.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(swapped) == dropouts and all(type(m) is CpuDropout and not m.training for m in swapped)
    with torch.no_grad():
        reference = stock(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(fast(input_ids=ids, attention_mask=mask).logits, reference, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = fast(input_ids=ids, attention_mask=mask).logits.float()
    assert torch.allclose(half, reference, atol=0.05) and not torch.equal(half, reference)
    fast.save_pretrained(tmp_path)
    assert ATTENTION not in (tmp_path / "config.json").read_text()
    assert "_attn_implementation" not in json.loads((tmp_path / "config.json").read_text())
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config._attn_implementation == "sdpa"
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits, reference, atol=1e-5)


def test_a_model_that_refuses_the_attention_function_keeps_its_own(tiny_bert_dir, monkeypatch):
    from srnet_cli.engine.training.cpu_paths import use_cpu_paths
    from srnet_cli.engine.training.models import load_classifier

    model = load_classifier(tiny_bert_dir, ("a", "b", "c"))

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not supported")

    monkeypatch.setattr(model, "set_attn_implementation", refuse)
    use_cpu_paths(model)
    assert model.config._attn_implementation == "sdpa"
    assert any(type(m) is CpuDropout for m in model.modules())


def test_a_family_without_pluggable_attention_runs_bf16_with_eager_attention(tiny_bert_dir, monkeypatch):
    """Such a family (MPNet, DeBERTa) keeps SDPA in fp32 and switches to eager attention for bf16 on a CPU: PyTorch's
    fused CPU attention backward is slow in bf16."""
    from srnet_cli.engine.runs.devices import fit_to_device
    from srnet_cli.engine.training.models import load_classifier

    fp32 = load_classifier(tiny_bert_dir, ("a", "b", "c"))
    bf16 = load_classifier(tiny_bert_dir, ("a", "b", "c"))
    for model in (fp32, bf16):
        monkeypatch.setattr(model, "_supports_attention_backend", False)
    assert fit_to_device(fp32, "cpu", "no").config._attn_implementation == "sdpa"
    assert fit_to_device(bf16, "cpu", "bf16").config._attn_implementation == "eager"
    assert all(any(type(m) is CpuDropout for m in model.modules()) for model in (fp32, bf16))


def test_every_model_srnet_predicts_with_on_a_cpu_runs_the_cpu_paths(tiny_bert_dir, synth_dir, tmp_path, monkeypatch):
    """The models loaded for inference only, too: the selected checkpoint reloaded for the final evaluation (here
    step 80 of 120) and a bias learner's models predicting their held-out examples (`bias-model --kind shallow`)."""
    from typer.testing import CliRunner

    from srnet_cli.cli import app
    from srnet_cli.engine.evaluation import predict
    from srnet_cli.engine.training import loop

    seen: list[bool] = []
    original = loop.predict_logits

    def spy(model, *args, **kwargs):
        seen.append(not any(type(m) is torch.nn.Dropout for m in model.modules()))
        return original(model, *args, **kwargs)

    monkeypatch.setattr(loop, "predict_logits", spy)
    monkeypatch.setattr(predict, "predict_logits", spy)
    common = ["--model", tiny_bert_dir, "--data-dir", synth_dir, "--json", "--quiet"]
    fast = ["--set", "train.batch_size=32", "--set", "train.lr=2e-3", "--set", "train.warmup_steps=1"]
    result = CliRunner().invoke(app, [str(a) for a in [
        "finetune", "--task", "mnli", "--loss", "ce", "--max-steps", 120, "--set", "eval.every=40",
        "--out", tmp_path / "ft", *common, *fast]])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["best_step"] == 80  # so the final evaluation reloads the saved model
    result = CliRunner().invoke(app, [str(a) for a in [
        "bias-model", "--task", "mnli", "--kind", "shallow", "--subset", 40, "--folds", 2, "--max-steps", 4,
        "--out", tmp_path / "bias", *common]])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(seen) > 6 and all(seen), seen


def test_a_onednn_cap_below_bf16_means_no_fast_bf16(monkeypatch):
    """`ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN emulate bf16 even on a bf16 CPU: the demo must then pick fp32."""
    import torch

    from srnet_cli.engine.runs import devices

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert devices.cpu_has_fast_bf16()
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "avx2")  # oneDNN's former name, still read
    assert not devices.cpu_has_fast_bf16()
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    for cap, fast in (("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True), ("ALL", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert devices.cpu_has_fast_bf16() is fast, cap
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert not devices.cpu_has_fast_bf16()  # no cap makes an AVX2 CPU fast
