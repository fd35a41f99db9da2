"""Evaluation's fp32 linear layers through oneDNN (`engine/evaluation/cpu_products.py`)."""

from __future__ import annotations

import pytest
import torch
from op_names import OpNames

from srnet_cli.engine.evaluation import cpu_products
from srnet_cli.engine.evaluation.cpu_products import (
    OneDnnLinears,
    onednn_available,
    onednn_faster,
    onednn_linears,
    onednn_wins,
)

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN linear")


@pytest.mark.parametrize("shape", [(5, 48), (3, 7, 48), (1, 1, 48)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_the_onednn_linear_equals_torchs_up_to_rounding_and_runs_onednn(shape, with_bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 96, bias=with_bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = linear(x)
        with OpNames() as ops, OneDnnLinears():
            got = linear(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert any("_linear_pointwise" in name for name in ops.names), ops.names


def test_training_autocast_and_other_dtypes_keep_torchs_linear():
    """oneDNN's fp32 linear has no backward: with gradients on nothing changes; nor under bf16 autocast, nor in
    float64."""
    linear = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    with OpNames() as ops, OneDnnLinears():
        linear(x).sum().backward()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            linear(x)
        with torch.no_grad():
            linear.double()(x.double().detach())
    assert not any("_linear_pointwise" in name for name in ops.names)
    assert x.grad is not None


def test_onednn_is_taken_only_where_it_measured_clearly_faster(monkeypatch):
    assert onednn_wins(mkl_seconds=1.0, onednn_seconds=0.5)
    assert not onednn_wins(mkl_seconds=1.0, onednn_seconds=0.95)  # level: MKL stays, run after run
    assert not onednn_wins(mkl_seconds=1.0, onednn_seconds=2.0)
    timed: list[int] = []

    def fake_timing():
        timed.append(torch.get_num_threads())
        return 1.0, 0.5

    monkeypatch.setattr(cpu_products, "_faster_at_threads", {})
    monkeypatch.setattr(cpu_products, "_time_both", fake_timing)
    assert onednn_faster() and onednn_faster()
    assert timed == [torch.get_num_threads()]  # once per thread count
    monkeypatch.setattr(cpu_products, "onednn_faster", lambda: False)
    with onednn_linears("cpu") as on:
        assert not on
    monkeypatch.setattr(cpu_products, "onednn_faster", lambda: True)
    with onednn_linears("cpu") as on:
        assert on
    with onednn_linears("meta") as on:  # an accelerator keeps its own products
        assert not on


def test_the_timing_measures_both_libraries():
    mkl, onednn = cpu_products._time_both(rounds=1)
    assert 0 < mkl < 10 and 0 < onednn < 10


def test_predict_logits_with_onednn_gives_the_same_logits(tiny_bert_dir, monkeypatch):
    from nli_pairs import LABELS, encoded_pairs

    from srnet_cli.engine.training.loop import predict_logits
    from srnet_cli.engine.training.models import load_classifier

    data = encoded_pairs(tiny_bert_dir, 20)
    model = load_classifier(tiny_bert_dir, LABELS)
    logits = {}
    for amd in (False, True):
        monkeypatch.setattr(cpu_products, "onednn_faster", lambda amd=amd: amd)
        with OpNames() as ops:
            logits[amd] = predict_logits(model, data, 8, "cpu")
        assert any("_linear_pointwise" in name for name in ops.names) == amd
        if amd:  # each weight packed once for the whole evaluation (3 batches), not once per batch
            linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
            assert ops.names.count("mkldnn._reorder_linear_weight") == linears
    assert torch.allclose(logits[True], logits[False], rtol=1e-5, atol=1e-6)


def test_keyword_calls_and_strided_or_expanded_biases_give_torchs_result():
    """oneDNN reads a bias as a contiguous vector: a strided or an expanded bias must not be misread."""
    torch.manual_seed(0)
    x, weight = torch.randn(4, 6, 16), torch.randn(8, 16)
    for bias in (torch.randn(16)[::2], torch.tensor(1.5).expand(8), None):
        with torch.inference_mode():
            expected = torch.nn.functional.linear(x, weight, bias)
            with OneDnnLinears():
                positional = torch.nn.functional.linear(x, weight, bias)
                named = torch.nn.functional.linear(input=x, weight=weight, bias=bias)
        assert torch.allclose(positional, expected, rtol=1e-5, atol=1e-5)
        assert torch.allclose(named, expected, rtol=1e-5, atol=1e-5)


def test_each_parameter_weight_is_packed_once_per_block_and_computed_weights_never():
    """Batches reuse a packed weight; a weight computed in the forward pass (a mask in training) is new at every
    call, so it goes to oneDNN unpacked; the next block packs again, so a weight changed in between is read anew."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 24)
    x = torch.randn(3, 5, 16)
    mask = (torch.rand(24, 16) > 0.5).float()
    with torch.inference_mode():
        with OpNames() as ops, OneDnnLinears():
            batches = [linear(x) for _ in range(3)]
            masked = torch.nn.functional.linear(x, linear.weight * mask, linear.bias)
        assert ops.names.count("mkldnn._reorder_linear_weight") == 1, ops.names
        assert ops.names.count("mkldnn._linear_pointwise") == 4
        for got in batches:
            assert torch.allclose(got, torch.nn.functional.linear(x, linear.weight, linear.bias), atol=1e-5)
        assert torch.allclose(masked, torch.nn.functional.linear(x, linear.weight * mask, linear.bias), atol=1e-5)
        linear.weight.mul_(2.0)
        with OneDnnLinears():
            doubled = linear(x)
        assert torch.allclose(doubled, torch.nn.functional.linear(x, linear.weight, linear.bias), atol=1e-5)
