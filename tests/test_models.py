"""Model resolution: the embedded alias, local paths, offline hub names, label mapping by name."""

import time

import pytest

from srnet_cli.engine.data.tasks import task_spec
from srnet_cli.engine.evaluation.predict import head_labels
from srnet_cli.engine.training.models import load_classifier, minilm_dir, resolve_model
from srnet_cli.errors import ModelError


def test_minilm_alias_points_at_packaged_weights():
    path = resolve_model("minilm")
    assert path == str(minilm_dir())
    assert (minilm_dir() / "config.json").is_file() and (minilm_dir() / "model.safetensors").is_file()


def test_missing_local_path_is_one_line_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_uncached_hub_name_offline_fails_fast_and_suggests_minilm(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.time()
    with pytest.raises(ModelError, match="not in the local Hugging Face cache") as info:
        load_classifier("srnet-test/definitely-not-cached", ("a", "b"))
    assert "minilm" in info.value.hint
    assert time.time() - started < 20


def test_labels_are_mapped_by_name():
    mnli = task_spec("mnli")
    shuffled = ("entailment", "neutral", "contradiction")
    assert head_labels(shuffled, mnli) == shuffled  # names kept in the head's own order
    assert head_labels(("LABEL_0", "LABEL_1", "LABEL_2"), mnli) == mnli.labels
    with pytest.raises(ModelError, match="are not the mnli labels"):
        head_labels(("negative", "positive"), mnli)


def test_tiny_models_load_with_named_labels(tiny_bert_dir, tiny_roberta_dir):
    for path in (tiny_bert_dir, tiny_roberta_dir):
        model = load_classifier(str(path), ("contradiction", "entailment", "neutral"))
        assert model.config.id2label == {0: "contradiction", 1: "entailment", 2: "neutral"}


def test_label_names_match_case_insensitively():
    assert head_labels(("CONTRADICTION", "NEUTRAL", "ENTAILMENT"), task_spec("mnli")) == (
        "contradiction",
        "neutral",
        "entailment",
    )
