"""Losses against hand-computed values."""

import math

import pytest
import torch

from srnet_cli.engine.losses import (
    LOSSES,
    NEEDS_BIAS,
    anneal_bias,
    anneal_power,
    ce_loss,
    conf_reg_loss,
    make_loss,
    poe_loss,
    reweight_loss,
)


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

    assert set(LOSSES) == {"ce", "poe", "reweight", "conf-reg"} == set(LossKind.__args__)
    assert NEEDS_BIAS == {"poe", "reweight", "conf-reg"} == set(LOSSES_NEEDING_BIAS)
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


def test_conf_reg_matches_hand_computed_value():
    # Teacher [0.5, 0.25, 0.25], gold 0 with bias p_b(0) = 0.5 -> exponent 1 - 0.5 = 0.5:
    # sqrt -> [0.7071, 0.5, 0.5] / 1.7071 = [0.41421, 0.29289, 0.29289].
    # Model logits [ln 2, 0, 0] -> p_m = [0.5, 0.25, 0.25]; loss = -(0.41421 ln .5 + 2 * 0.29289 ln .25).
    teacher = torch.tensor([[0.5, 0.25, 0.25]])
    bias = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    s = [math.sqrt(0.5), 0.5, 0.5]
    s = [x / sum(s) for x in s]
    expected = -(s[0] * math.log(0.5) + s[1] * math.log(0.25) + s[2] * math.log(0.25))
    assert conf_reg_loss(logits, torch.tensor([0]), bias, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_conf_reg_limits():
    torch.manual_seed(1)
    logits, teacher = torch.randn(4, 3), torch.softmax(torch.randn(4, 3), dim=-1)
    labels = torch.tensor([0, 1, 2, 0])
    # A bias that gives the gold label probability 0 leaves the teacher unchanged: plain distillation.
    zero_gold = torch.full((4, 3), math.log(0.5))
    zero_gold[torch.arange(4), labels] = -1e4
    distill = -(teacher * torch.log_softmax(logits, -1)).sum(-1).mean()
    assert conf_reg_loss(logits, labels, zero_gold, teacher).item() == pytest.approx(distill.item(), rel=1e-5)
    # A bias certain of the gold label flattens the target to uniform.
    certain = torch.full((4, 3), -1e4)
    certain[torch.arange(4), labels] = 0.0
    uniform = -(torch.log_softmax(logits, -1)).mean(-1).mean()
    assert conf_reg_loss(logits, labels, certain, teacher).item() == pytest.approx(uniform.item(), rel=1e-5)


def test_anneal_power_is_linear_from_max_to_min():
    # linspace(1.0, 0.8, 5) = [1.0, 0.95, 0.9, 0.85, 0.8] for 4 steps, indexed by step - 1
    assert [anneal_power(step, 4, 0.8, 1.0) for step in range(1, 6)] == pytest.approx([1.0, 0.95, 0.9, 0.85, 0.8])


def test_anneal_bias_renormalises_the_powered_probabilities():
    bias = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    # power 0.5: sqrt -> [0.7071, 0.5, 0.5] / 1.7071
    expected = torch.tensor([[math.sqrt(0.5), 0.5, 0.5]]) / (math.sqrt(0.5) + 1.0)
    assert torch.allclose(anneal_bias(bias, 0.5).exp(), expected, atol=1e-6)
    assert torch.allclose(anneal_bias(bias, 1.0), bias, atol=1e-6)


@pytest.mark.parametrize("kind", ["poe", "reweight", "conf-reg"])
def test_annealed_loss_uses_the_powered_bias_at_each_step(kind):
    torch.manual_seed(2)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    bias, teacher = torch.log_softmax(torch.randn(5, 3) * 2, -1), torch.softmax(torch.randn(5, 3), -1)
    loss = make_loss(kind, (0.6, 1.0), total_steps=10)
    plain = LOSSES[kind]
    assert loss(logits, labels, bias, teacher, 1).item() == pytest.approx(plain(logits, labels, bias, teacher).item())
    # step 6 of 10: power 1.0 - 0.4 * 5 / 10 = 0.8
    at_step_6 = plain(logits, labels, anneal_bias(bias, 0.8), teacher)
    assert loss(logits, labels, bias, teacher, 6).item() == pytest.approx(at_step_6.item())
    assert make_loss(kind)(logits, labels, bias, teacher, 6).item() == pytest.approx(
        plain(logits, labels, bias, teacher).item()
    )
