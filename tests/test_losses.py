"""Losses against hand-computed values."""

import math

import pytest
import torch

from srnet_cli.engine.debias.losses import (
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
    from srnet_cli.engine.debias.losses import GATED

    assert set(LOSSES) | GATED | {"focal"} == set(LossKind.__args__)
    assert NEEDS_BIAS == {"poe", "reweight", "conf-reg", "learned-mixin", "learned-mixin-h", "focal"}
    assert NEEDS_BIAS == set(LOSSES_NEEDING_BIAS)
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
    from srnet_cli.engine.data.tasks import label_set, task_spec

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


# ------------------------------------------------------------------ learned-mixin (+H) and the debiased focal loss
def test_focal_loss_matches_a_hand_computation():
    from srnet_cli.engine.debias.losses import focal_loss

    logits, labels = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    bias = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]]).log()
    p0 = math.exp(2) / (math.exp(2) + 1 + math.exp(-1))
    p1 = 1 / (2 + math.e)
    expected = -((0.3**2) * math.log(p0) + (0.75**2) * math.log(p1)) / 2
    assert focal_loss(logits, labels, bias, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    # gamma 0 is plain cross-entropy
    assert focal_loss(logits, labels, bias, gamma=0.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6
    )


def test_learned_mixin_matches_a_hand_computation():
    from srnet_cli.engine.debias.losses import learned_mixin_loss

    logits, labels = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([1])
    bias = torch.tensor([[0.5, 0.25, 0.25]]).log()
    gate = torch.tensor([2.0])
    # softmax(log p_m + 2 log p_b) ∝ p_m · p_b²: [0.25 e, 0.0625, 0.0625]
    expected = -math.log(0.0625 / (0.25 * math.e + 0.125))
    assert learned_mixin_loss(logits, labels, bias, gate).item() == pytest.approx(expected, rel=1e-6)
    # +H: the entropy of softmax(2 log p_b) = [2/3, 1/6, 1/6]
    entropy = -(2 / 3 * math.log(2 / 3) + 2 * (1 / 6) * math.log(1 / 6))
    with_h = learned_mixin_loss(logits, labels, bias, gate, entropy_weight=0.03).item()
    assert with_h == pytest.approx(expected + 0.03 * entropy, rel=1e-6)
    # a gate of 1 is PoE; a gate of 0 is plain CE
    assert learned_mixin_loss(logits, labels, bias, torch.ones(1)).item() == pytest.approx(
        poe_loss(logits, labels, bias).item(), rel=1e-6
    )
    assert learned_mixin_loss(logits, labels, bias, torch.zeros(1)).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6
    )


@pytest.mark.parametrize("kind", ["learned-mixin", "learned-mixin-h", "focal"])
def test_gradients_match_finite_differences(kind):
    """Autograd against a central finite difference, w.r.t. the logits and (learned-mixin) the gate's weights."""
    from types import SimpleNamespace

    from srnet_cli.engine.debias.losses import TrainingLoss

    torch.manual_seed(0)
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1])
    bias = torch.log_softmax(torch.randn(4, 3, dtype=torch.float64), dim=-1)
    hidden = torch.randn(4, 5, 8, dtype=torch.float64)
    gate = torch.nn.Linear(8, 1).double()
    loss = TrainingLoss(kind, entropy_weight=0.5 if kind == "learned-mixin-h" else 0.0, gamma=1.5, gate=gate)

    def value():
        outputs = SimpleNamespace(logits=logits, hidden_states=(hidden,))
        return loss(outputs, labels, bias, None, 1)

    value().backward()
    for tensor in [logits, *(gate.parameters() if kind != "focal" else [])]:
        grad, eps = tensor.grad.clone(), 1e-6
        flat = tensor.detach().view(-1)
        for i in range(flat.numel()):
            with torch.no_grad():
                flat[i] += eps
                up = value().item()
                flat[i] -= 2 * eps
                down = value().item()
                flat[i] += eps
            assert grad.view(-1)[i].item() == pytest.approx((up - down) / (2 * eps), abs=1e-6)


def test_the_gate_trains_and_stays_out_of_the_saved_checkpoint(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from srnet_cli.engine.debias.losses import GATE, attach_gate, make_loss

    model = attach_gate(AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir))
    loss = make_loss("learned-mixin-h", entropy_weight=0.03, model=model)
    assert loss.gate is model.get_submodule(GATE) and loss.wants_hidden
    ids = torch.tensor([[2, 10, 11, 3, 12, 3]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    loss(out, torch.tensor([1]), torch.tensor([[0.2, 0.5, 0.3]]).log(), None, 1).backward()
    assert model.get_submodule(GATE).weight.grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    assert not any(k.startswith(GATE) for k in load_file(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="needs the model's gate"):
        make_loss("learned-mixin", model=AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir))


def test_the_new_losses_train_through_imp_and_retrain(tiny_bert_dir, synth_dir, bias_file, tmp_path):
    import json

    from typer.testing import CliRunner

    from srnet_cli.cli import app

    common = ["--task", "mnli", "--data-dir", str(synth_dir), "--bias", str(bias_file), "--max-steps", "4",
              "--batch-size", "16", "--warmup", "0", "--json", "--quiet"]  # fmt: skip
    imp = CliRunner().invoke(app, ["imp", "--loss", "focal", "--model", str(tiny_bert_dir), "--sparsity", "0.2",
                                   "--set", "imp.rate=0.1", "--out", str(tmp_path / "imp"), *common])  # fmt: skip
    assert imp.exit_code == 0, imp.output
    assert [round(level["sparsity"], 2) for level in json.loads(imp.stdout)["levels"]] == [0.1, 0.2]
    for loss in ("learned-mixin", "learned-mixin-h", "focal"):
        retrained = CliRunner().invoke(app, ["retrain", "--loss", loss, "--model", str(tiny_bert_dir), "--mask",
                                             str(tmp_path / "imp"), "--sparsity", "0.2",
                                             "--out", str(tmp_path / f"rt-{loss}"), *common])  # fmt: skip
        assert retrained.exit_code == 0, retrained.output
        assert json.loads(retrained.stdout)["sparsity"]["encoder_sparsity"] == pytest.approx(0.2, abs=0.01)
        assert (tmp_path / f"rt-{loss}" / "preset.toml").read_text().count(f'kind = "{loss}"') == 1
