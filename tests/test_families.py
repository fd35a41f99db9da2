"""Every encoder family of the structure map, end to end through the CLI: finetune -> imp (2 levels, rewinding)
-> mask-train -> retrain -> export-mask --bake -> evaluate; masks cover exactly the map's matrices."""

from __future__ import annotations

import json
import re

import pytest
import torch
from families import FAMILY_MODELS, build_family_model
from op_names import OpNames
from typer.testing import CliRunner

from srnet_cli.cli import app
from srnet_cli.engine.runs.context import NullReporter
from srnet_cli.engine.sparse.mask_io import load_mask_file
from srnet_cli.engine.sparse.structure import FAMILIES, structure_of
from srnet_cli.errors import MaskError
from srnet_cli.recipes.subnetworks import masked_model

runner = CliRunner()
FAST = ["--set", "train.batch_size=16", "--set", "train.warmup_steps=0", "--set", "eval.batch_size=64"]
# the matrices of one layer and the roles they hold, per family: written out by hand from the modules' source
EXPECTED = {
    "bert": 6, "deberta-v2": 6, "deberta": 4, "distilbert": 6, "mpnet": 6, "modernbert": 4, "albert": 6,
}  # fmt: skip


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module", params=FAMILY_MODELS, ids=[f[0] for f in FAMILY_MODELS])
def family_dir(request, tiny_bert_dir, tiny_roberta_dir, tmp_path_factory):
    name, model_type, overrides = request.param
    return build_family_model(model_type, overrides, tmp_path_factory.mktemp(name), tiny_bert_dir, tiny_roberta_dir)


def linears(model):
    return {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_the_map_places_every_linear_and_counts_the_matrices(family_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(family_dir)
    structure = structure_of(model)
    config = model.config
    layers = 1 if structure.family.shared_layers else config.num_hidden_layers
    assert len(structure.layers) == layers
    assert [len(layer.matrices) for layer in structure.layers] == [EXPECTED[structure.family.name]] * layers
    placed = set(structure.encoder) | set(structure.pooler) | set(structure.head) | set(structure.dense)
    assert placed == linears(model)  # every linear placed, none twice
    assert structure.num_heads * structure.head_size == 32 and structure.ffn_size == 64
    for layer in structure.layers:  # every role of the family, Q/K/V/O and the FFN, in each layer
        assert set(layer.modules) == set(structure.family.roles)


def test_every_command_works_and_masks_exactly_the_map(family_dir, synth_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    common = ["--task", "mnli", "--data-dir", synth_dir, "--json", "--quiet", *FAST]
    runs = tmp_path / "runs"
    ft = runs / "ft"
    ok(invoke("finetune", "--loss", "ce", "--model", family_dir, "--max-steps", 3, "--out", ft, *common))
    imp = ok(
        invoke("imp", "--loss", "ce", "--model", ft / "model", "--sparsity", 0.2, "--rewind", "pretrained",
               "--max-steps", 4, "--set", "imp.rate=0.1", "--out", runs / "imp", *common)
    )  # fmt: skip
    assert [round(level["sparsity"], 2) for level in imp["levels"]] == [0.1, 0.2]
    mt = runs / "mt"
    searched = ok(invoke("mask-train", "--loss", "ce", "--model", ft / "model", "--sparsity", 0.5,
                         "--max-steps", 2, "--out", mt, *common))  # fmt: skip
    assert searched["sparsity"]["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)
    masks = load_mask_file(mt / "masks" / "best.safetensors").masks
    structure = structure_of(AutoModelForSequenceClassification.from_pretrained(ft / "model"))
    expected = set(structure.encoder) | set(structure.pooler) | set(structure.head)  # mask-train masks the head
    assert {k.removesuffix(".weight") for k in masks} == expected
    for name in structure.encoder:  # the paper's per-matrix sparsity
        assert 1 - masks[f"{name}.weight"].float().mean().item() == pytest.approx(0.5, abs=0.02)
    retrained = ok(invoke("retrain", "--loss", "ce", "--model", family_dir, "--mask", mt, "--max-steps", 2,
                          "--out", runs / "rt", *common))  # fmt: skip
    assert retrained["sparsity"]["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)
    original = invoke("export-mask", mt, "--to", tmp_path / "mask.pt")
    if structure.family.name == "bert" and "bert.pooler.dense" in structure.pooler:
        assert original.exit_code == 0, original.output
    else:  # the original project's format holds BERT names only
        assert original.exit_code == 2 and "holds masks of a BERT" in original.output
    report = ok(invoke("report", runs, "--out", tmp_path / "report", "--json"))
    assert len(report["rows"]) >= 4 and any(row["sparsity"] == pytest.approx(0.5, abs=0.01) for row in report["rows"])
    baked = tmp_path / "baked"
    ok(invoke("export-mask", mt, "--bake", "--model", ft / "model", "--out", baked, "--json"))
    plain = AutoModelForSequenceClassification.from_pretrained(baked).eval()
    evaluate = ["evaluate", "--task", "mnli", "--data-dir", synth_dir, "--json", "--quiet"]
    masked_eval = ok(invoke(*evaluate, "--model", ft / "model", "--mask", mt))
    baked_eval = ok(invoke(*evaluate, "--model", baked))
    assert masked_eval["metrics"] == baked_eval["metrics"]
    weights = dict(plain.named_parameters())
    for name in structure.encoder:
        assert torch.equal(weights[f"{name}.weight"] != 0, masks[f"{name}.weight"] | (weights[f"{name}.weight"] != 0))
        assert not weights[f"{name}.weight"][~masks[f"{name}.weight"]].any()  # pruned weights are zero
    masked = masked_model(str(ft / "model"), mt / "masks" / "best.safetensors",
                          load_mask_file(mt / "masks" / "best.safetensors"), (), NullReporter()).eval()  # fmt: skip
    batch = {
        "input_ids": torch.tensor([[2, 10, 11, 12, 3, 13, 14, 3]]),
        "attention_mask": torch.ones(1, 8, dtype=torch.long),
    }
    with torch.no_grad():  # the baked checkpoint's logits are the masked model's
        torch.testing.assert_close(plain(**batch).logits, masked(**batch).logits, atol=1e-5, rtol=0)


def test_a_linear_the_map_does_not_place_is_refused_by_name(tiny_bert_dir, synth_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    model.bert.encoder.layer[1].attention.self.adapter = torch.nn.Linear(32, 32)
    with pytest.raises(
        MaskError, match=r"does not place 1 linear layer.*bert\.encoder\.layer\.1\.attention\.self\.adapter"
    ):
        structure_of(model)
    leave = structure_of(model, leave_dense=(r"attention\.self\.adapter",))
    assert leave.dense == {"bert.encoder.layer.1.attention.self.adapter": "left dense by mask.leave_dense"}


def test_an_unknown_family_is_refused_before_anything_is_written(tiny_bert_dir, synth_dir, tmp_path):
    config = json.loads((tiny_bert_dir / "config.json").read_text())
    custom = tmp_path / "custom"
    custom.mkdir()
    for path in tiny_bert_dir.iterdir():
        (custom / path.name).write_bytes(path.read_bytes())
    (custom / "config.json").write_text(json.dumps({**config, "model_type": "bert", "architectures": ["X"]}))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(custom)
    model.config.model_type = "my-bert"
    with pytest.raises(MaskError, match="no structure map for model type 'my-bert'") as info:
        structure_of(model)
    assert "mask.family" in info.value.hint
    assert len(structure_of(model, "bert").encoder) == 12  # the escape hatch is coverage-checked like the map


def test_a_layer_missing_a_role_is_refused(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    model.bert.encoder.layer[0].intermediate.dense = torch.nn.Identity()
    with pytest.raises(MaskError, match="lacks ffn_in"):
        structure_of(model)


def test_models_lists_every_family_with_its_matrices():
    listed = ok(invoke("models", "--json"))
    assert [row["family"] for row in listed["families"]] == [f.name for f in FAMILIES]
    modern = next(row for row in listed["families"] if row["family"] == "modernbert")
    assert modern["roles"]["query"] == "attn.Wqkv [1/3]" and modern["matrices_per_layer"] == 4
    table = invoke("models")
    assert table.exit_code == 0 and re.search(r"deberta-v2.*query_proj", table.stdout.replace("\n", " "))


def test_bias_models_that_train_a_model(family_dir, synth_dir, tmp_path):
    common = ["--task", "mnli", "--model", family_dir, "--data-dir", synth_dir, "--json", "--quiet"]
    fast = ["--set", "train.max_steps=2", "--set", "train.warmup_steps=0", "--set", "train.batch_size=16"]
    weak = ok(invoke("bias-model", "--kind", "weak-learner", "--layers", 1, *common, *fast, "--out", tmp_path / "w"))
    shallow = ok(invoke("bias-model", "--kind", "shallow", "--subset", 40, *common, *fast, "--out", tmp_path / "s"))
    assert weak["training_examples"] == shallow["training_examples"] == 240


def test_cpu_paths_change_no_output_and_every_dropout_uses_them(family_dir):
    """On a CPU (`fit_to_device`) the family's evaluation logits equal stock transformers' on both attention paths
    (a short batch, and one past `FUSED_MIN_KEYS`), and in a training step no dropout mask comes from torch's own
    kernels (`bernoulli_`, `native_dropout`): every dropout of the family goes through srnet's masks, which follow
    torch's seed."""
    from srnet_cli.engine.runs.devices import fit_to_device
    from srnet_cli.engine.training.cpu_paths import FUSED_MIN_KEYS, CpuDropout
    from srnet_cli.engine.training.models import load_classifier

    stock = load_classifier(family_dir, ("a", "b", "c")).eval()
    fast = load_classifier(family_dir, ("a", "b", "c")).eval()
    fast.load_state_dict(stock.state_dict())
    fit_to_device(fast, "cpu", "no")
    assert not any(type(m) is torch.nn.Dropout for m in fast.modules())
    torch.manual_seed(0)
    for length in (12, FUSED_MIN_KEYS + 6):
        ids = torch.randint(5, 60, (3, length))
        mask = torch.ones_like(ids)
        mask[1, length // 2 :] = 0
        with torch.no_grad():
            expected = stock(input_ids=ids, attention_mask=mask).logits
            assert torch.allclose(fast(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5)
    fast.train()
    torch.manual_seed(7)
    with OpNames() as ops:
        logits = fast(input_ids=ids, attention_mask=mask).logits
        logits.square().sum().backward()
    assert not {n for n in ops.names if "bernoulli" in n or "dropout" in n}, set(ops.names)
    torch.manual_seed(7)
    assert torch.equal(fast(input_ids=ids, attention_mask=mask).logits, logits)
    if any(m.p > 0 for m in fast.modules() if isinstance(m, CpuDropout)):
        torch.manual_seed(8)
        assert not torch.equal(fast(input_ids=ids, attention_mask=mask).logits, logits)


def test_evaluation_runs_the_last_layer_for_the_first_token_only_with_the_same_logits(family_dir):
    """Within `first_token_only` the last layer's attention output projection and FFN see position 0 alone (the
    token the head reads); every logit equals the whole model's, on padded batches. ALBERT (shared layers) runs
    whole; after the block the model is whole again."""
    from srnet_cli.engine.evaluation.first_token import first_token_only
    from srnet_cli.engine.sparse.structure import structure_of
    from srnet_cli.engine.training.models import load_classifier

    model = load_classifier(family_dir, ("a", "b", "c")).eval()
    last = structure_of(model).layers[-1]
    rows: list[int] = []
    for role in ("attention_output", "ffn_in", "ffn_out"):
        model.get_submodule(last.modules[role]).register_forward_hook(lambda _m, a, _o: rows.append(a[0].shape[-2]))
    torch.manual_seed(0)
    ids = torch.randint(5, 60, (3, 14))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        whole = model(input_ids=ids, attention_mask=mask).logits
        assert set(rows) == {14}  # ALBERT runs its shared matrices once per layer
        rows.clear()
        with first_token_only(model) as cut:
            logits = model(input_ids=ids, attention_mask=mask).logits
        assert cut == (not structure_of(model).family.shared_layers)
        assert set(rows) == ({1} if cut else {14})
        assert torch.allclose(logits, whole, atol=1e-6)
        rows.clear()
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, whole)
        assert set(rows) == {14}
