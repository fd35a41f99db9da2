"""Evaluation's first-token cut of the last layer: where it applies, where it must not, and that
`predict_logits` gives the whole model's logits with it (per family: tests/test_families.py)."""

from __future__ import annotations

import torch
from families import build_family_model
from nli_pairs import LABELS, encoded_pairs

from srnet_cli.engine.evaluation.first_token import first_token_modules, first_token_only
from srnet_cli.engine.training.loop import predict_logits
from srnet_cli.engine.training.models import load_classifier


def whole_logits(model, data) -> torch.Tensor:
    """One example at a time, no padding, no cut: the reference."""
    out = []
    with torch.no_grad():
        for i in range(len(data)):
            ids = torch.tensor([data.input_ids[i]])
            types = None if data.token_type_ids is None else torch.tensor([data.token_type_ids[i]])
            kwargs = {} if types is None else {"token_type_ids": types}
            out.append(model(input_ids=ids, **kwargs).logits)
    return torch.cat(out)


def test_predict_logits_with_the_cut_equals_the_whole_model(tiny_bert_dir):

    model = load_classifier(tiny_bert_dir, LABELS).eval()
    assert first_token_modules(model) == ("bert.encoder.layer.1.attention.output.dense",
                                          "bert.encoder.layer.1.attention.output.LayerNorm")  # fmt: skip
    data = encoded_pairs(tiny_bert_dir, 40)
    assert len(set(data.lengths)) > 5  # batches are padded
    rows: list[int] = []
    ffn = model.get_submodule("bert.encoder.layer.1.intermediate.dense")
    ffn.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[1]))
    logits = predict_logits(model, data, 16, "cpu")
    assert rows == [1, 1, 1]  # the three batches of predict_logits ran the last FFN on [CLS] alone
    assert torch.allclose(logits, whole_logits(model, data), atol=1e-6)


def test_a_chunked_ffn_runs_whole(tiny_bert_dir):
    """`chunk_size_feed_forward` splits the FFN along the sequence, which one position cannot be split into."""
    model = load_classifier(tiny_bert_dir, LABELS).eval()
    model.config.chunk_size_feed_forward = 4
    assert first_token_modules(model) is None
    ids = torch.randint(5, 60, (2, 8))
    with torch.no_grad(), first_token_only(model) as cut:
        assert not cut and model(input_ids=ids).logits.shape == (2, 3)


def test_mean_pooling_hidden_states_and_unplaced_models_run_whole(tiny_bert_dir, tiny_roberta_dir, tmp_path):
    """ModernBERT's head can average every position: then no cut (the logits would change); so for a model that
    returns hidden states, a model that is not a sequence classifier, or one the structure map cannot place."""
    from transformers import AutoModel

    mean = load_classifier(
        build_family_model("modernbert", {"global_attn_every_n_layers": 2, "local_attention": 16,
                                          "classifier_pooling": "mean"}, tmp_path / "mb", tiny_bert_dir,
                           tiny_roberta_dir),
        LABELS,
    ).eval()  # fmt: skip
    assert first_token_modules(mean) is None
    data = encoded_pairs(tiny_bert_dir, 12)
    assert torch.allclose(predict_logits(mean, data, 4, "cpu"), whole_logits(mean, data), atol=1e-5)
    cls = load_classifier(tmp_path / "mb", LABELS)
    cls.config.classifier_pooling = "cls"
    assert first_token_modules(cls) is not None
    bert = load_classifier(tiny_bert_dir, LABELS)
    bert.config.output_hidden_states = True
    assert first_token_modules(bert) is None
    assert first_token_modules(AutoModel.from_pretrained(tiny_bert_dir)) is None
    bert.config.output_hidden_states = False
    bert.config.model_type = "unknown-encoder"
    assert first_token_modules(bert) is None
    with first_token_only(bert) as cut:
        assert not cut
