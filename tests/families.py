"""Tiny random classifiers of every encoder family in the structure map, built offline from their configs."""

from __future__ import annotations

from pathlib import Path

SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")
# (name, model_type, config overrides): the names are test ids; two DeBERTa-v2 layouts (v3's shared position keys,
# and separate position projections, which the map leaves dense)
FAMILY_MODELS: tuple[tuple[str, str, dict], ...] = (
    ("bert", "bert", {}),
    ("roberta", "roberta", {}),
    ("xlm-roberta", "xlm-roberta", {}),
    ("camembert", "camembert", {}),
    ("electra", "electra", {"embedding_size": 16}),
    ("deberta", "deberta", {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "max_relative_positions": 32}),
    (
        "deberta-v3",
        "deberta-v2",
        {
            "relative_attention": True,
            "pos_att_type": ["p2c", "c2p"],
            "share_att_key": True,
            "position_buckets": 16,
            "max_relative_positions": 32,
            "norm_rel_ebd": "layer_norm",
        },
    ),  # fmt: skip
    (
        "deberta-v2-pos-proj",
        "deberta-v2",
        {
            "relative_attention": True,
            "pos_att_type": ["p2c", "c2p"],
            "share_att_key": False,
            "max_relative_positions": 32,
        },
    ),  # fmt: skip
    ("distilbert", "distilbert", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    ("mpnet", "mpnet", {}),
    ("modernbert", "modernbert", {"global_attn_every_n_layers": 2, "local_attention": 16}),
    ("albert", "albert", {"embedding_size": 16}),
)


def build_family_model(model_type: str, overrides: dict, path: Path, bert_dir: Path, roberta_dir: Path) -> Path:
    """Save a 2-layer random classifier of `model_type` with a tokenizer that fits it (BPE for RoBERTa-likes,
    the tiny WordPiece otherwise) into `path`."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(roberta_dir if model_type in ROBERTA_LIKE else bert_dir)
    size = {} if model_type == "distilbert" else dict(SIZE)
    special = {"pad_token_id": tokenizer.pad_token_id}
    if model_type == "modernbert":
        special |= {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id,
                    "cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id}  # fmt: skip
    extra = {"max_position_embeddings": 80, "type_vocab_size": 1} if model_type in ROBERTA_LIKE else {}
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), num_labels=3, **size, **special, **extra, **overrides
    )
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
