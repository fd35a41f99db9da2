"""Small encoded NLI sets for evaluation tests: pairs of varied lengths, so that batches are padded."""

from __future__ import annotations

from srnet_cli.engine.data.batching import Encoded, encode
from srnet_cli.engine.data.readers import Example

LABELS = ("entailment", "neutral", "contradiction")


def pairs(n: int) -> list[Example]:
    words = "the doctor saw a lawyer near an artist who thanked the banker".split()
    return [
        Example(f"p{i}", " ".join(words[: 3 + i % 9]), " ".join(words[i % 4 : 6 + i % 5]), LABELS[i % 3], i)
        for i in range(n)
    ]


def encoded_pairs(tokenizer_dir, n: int) -> Encoded:
    """`n` pairs encoded by the tokenizer saved in `tokenizer_dir`, labels in `LABELS` order."""
    from transformers import AutoTokenizer

    return encode(pairs(n), AutoTokenizer.from_pretrained(tokenizer_dir), 64, {n: i for i, n in enumerate(LABELS)})
