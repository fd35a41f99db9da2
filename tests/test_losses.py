"""Losses against hand-computed values."""

import math

import pytest
import torch

from srnet_cli.engine.losses import LOSSES, NEEDS_BIAS, ce_loss, poe_loss, reweight_loss


def test_ce_matches_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))  # = 0.2395...
    assert ce_loss(logits, torch.tensor([0])).item() == pytest.approx(expected, abs=1e-6)


def test_poe_matches_hand_computed_value():
    # log p_m = log_softmax([0, ln 2, 0]) = log([1/4, 2/4, 1/4]); bias probs [1/2, 1/4, 1/4].
    # Product ∝ [1/8, 1/8, 1/16] -> normalised [0.4, 0.4, 0.2]; gold = 2 -> loss = -ln 0.2.
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]])
    bias = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert poe_loss(logits, torch.tensor([2]), bias).item() == pytest.approx(-math.log(0.2), abs=1e-6)


def test_poe_is_a_batch_mean():
    logits = torch.tensor([[0.0, math.log(2.0), 0.0], [1.0, 1.0, 1.0]])
    bias = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    # second row: model uniform -> product ∝ bias -> p(gold=2) = 0.6
    expected = (-math.log(0.2) - math.log(0.6)) / 2
    assert poe_loss(logits, torch.tensor([2, 2]), bias).item() == pytest.approx(expected, abs=1e-6)


def test_poe_with_uniform_bias_equals_ce():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 3), torch.randint(0, 3, (8,))
    uniform = torch.full((8, 3), math.log(1 / 3))
    assert poe_loss(logits, labels, uniform).item() == pytest.approx(ce_loss(logits, labels).item(), abs=1e-6)


def test_poe_downweights_examples_the_bias_already_explains():
    logits = torch.zeros(1, 3, requires_grad=True)
    confident = torch.log(torch.tensor([[0.01, 0.98, 0.01]]))
    poe_loss(logits, torch.tensor([1]), confident).backward()
    poe_grad = logits.grad.abs().sum().item()
    logits.grad = None
    ce_loss(logits, torch.tensor([1])).backward()
    assert poe_grad < 0.1 * logits.grad.abs().sum().item()


def test_reweight_matches_hand_computed_value():
    # Row 1: uniform logits -> CE = ln 3; bias p(gold=1) = 0.75 -> w = 0.25.
    # Row 2: logits [ln 2, 0, 0] -> p(gold=0) = 2/4 -> CE = ln 2; bias p(gold=0) = 0.1 -> w = 0.9.
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])
    bias = torch.log(torch.tensor([[0.125, 0.75, 0.125], [0.1, 0.45, 0.45]]))
    expected = (0.25 * math.log(3) + 0.9 * math.log(2)) / (0.25 + 0.9)  # normalised by the weight sum
    assert reweight_loss(logits, torch.tensor([1, 0]), bias).item() == pytest.approx(expected, rel=1e-6)


def test_registry_and_bias_requirements():
    from srnet_cli.config.schema import LOSSES_NEEDING_BIAS, LossKind

    assert set(LOSSES) == {"ce", "poe", "reweight"} == set(LossKind.__args__)
    assert NEEDS_BIAS == {"poe", "reweight"} == set(LOSSES_NEEDING_BIAS)
    for loss in (poe_loss, reweight_loss):
        with pytest.raises(ValueError):
            loss(torch.zeros(1, 3), torch.tensor([0]), None)


def test_ce_with_label_sets_is_minus_log_of_the_allowed_probability_mass():
    import math

    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    sets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # {contradiction, neutral}; {entailment}
    z0 = math.exp(1) + math.exp(2) + math.exp(3)
    z1 = math.exp(0.5) + math.exp(-1) + math.exp(0)
    expected = (-math.log((math.exp(1) + math.exp(3)) / z0) - math.log(math.exp(-1) / z1)) / 2
    assert ce_loss(logits, sets).item() == pytest.approx(expected, rel=1e-6)
    assert ce_loss(logits, sets[[1, 1]]).item() == pytest.approx(ce_loss(logits, torch.tensor([1, 1])).item())


def test_hans_non_entailment_allows_contradiction_and_neutral():
    from srnet_cli.engine.tasks import label_set, task_spec

    mnli = task_spec("mnli")
    assert label_set(mnli, "non-entailment") == ("contradiction", "neutral")
    assert label_set(mnli, "entailment") == ("entailment",) and label_set(mnli, "neutral") == ("neutral",)
