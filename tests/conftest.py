"""Shared fixtures: tiny random BERT and RoBERTa built offline, a small synthetic NLI benchmark, a bias file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# One thread per process: the tiny test models gain nothing from two, and tests that start processes (CLI runs,
# two-process training) then do not oversubscribe the cores (suite: 118 s against 183 s with two threads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

from srnet_cli.engine.data import synth_nli


def _corpus() -> list[str]:
    words = set(synth_nli.NOUNS_MATCHED + synth_nli.NOUNS_MISMATCHED + synth_nli.INTRANSITIVE + synth_nli.PREPOSITIONS)
    words |= {w for triple in synth_nli.TRANSITIVE for w in triple} | set(synth_nli.ADJECTIVES)
    words |= set(synth_nli.ADJECTIVES.values()) | set(synth_nli.ADVERBS) | set(synth_nli.SYNONYMS.values())
    words |= {
        "the",
        "who",
        "and",
        "if",
        "since",
        "because",
        "that",
        "believed",
        "hoped",
        "suspected",
        "knew",
        "forgot",
        "noticed",
        "was",
        "by",
        "did",
        "not",
        "nobody",
        "someone",
        "never",
        "it",
        "is",
        "false",
        "untrue",
        "wanted",
        "to",
        ".",
        ",",
    }
    return sorted(words)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT with a WordPiece vocabulary of the synthetic benchmark's words (~40k params)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + _corpus()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 ignores `vocab_file=`: pass the vocabulary as `vocab` or every word becomes [UNK].
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    assert tokenizer("the doctor saw the lawyer")["input_ids"].count(vocab.index("[UNK]")) == 0
    return path


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer RoBERTa with a byte-level BPE trained offline on the benchmark's words."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    path = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()
    sentences = [" ".join(_corpus())] * 3 + [w.capitalize() for w in _corpus()]
    bpe.train_from_iterator(
        sentences, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizerFast(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,
        num_labels=3,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
    )
    import torch

    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    assert len(tokenizer) > 100 and tokenizer.unk_token_id not in tokenizer("The doctor saw the lawyer.")["input_ids"]
    return path


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth")
    synth_nli.write_synth_nli(path, synth_nli.SynthNliSpec(train_size=240, dev_size=60, hans_per_subcase=4, seed=3))
    return path


@pytest.fixture(scope="session")
def bias_file(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from srnet_cli.engine.runs.context import NullReporter
    from srnet_cli.recipes import bias_model

    out = tmp_path_factory.mktemp("bias") / "run"
    bias_model.run("mnli", "overlap", synth_dir, out, NullReporter())
    return out / "bias.json"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """What a CLI process would start without: fault-point counts; and run-directory locks that a recipe called
    directly (not through the CLI, which releases them) would hold for the rest of the test session."""
    from srnet_cli.engine.runs import faults
    from srnet_cli.engine.runs import lock as runlock

    faults._hits.clear()
    yield
    runlock.release_locks(failed=False)
