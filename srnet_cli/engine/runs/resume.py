"""Resumable training state in OUT/resume/state/: tensors (safetensors), optimiser, scheduler, data order and RNG
(torch.save, read back with weights_only=True), and state.json (step, best so far, recipe bookkeeping).

A state is written into a temp directory and renamed into place, so OUT/resume/state is always complete: a kill
before the rename leaves the previous state (and a stale temp directory that `recover` removes); a kill between
the two renames leaves `.state.old`, which `recover` puts back (`rundir.replace_dir` / `recover_dir`, as for models).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srnet_cli.engine.runs.faults import fault_point
from srnet_cli.engine.runs.files import recover_dir, replace_dir, write_json
from srnet_cli.engine.sparse.groups import GROUPS_MODULE
from srnet_cli.engine.sparse.masks import masked_modules
from srnet_cli.errors import RunDirError
from srnet_cli.parsing import json_loads


def state_dir(out: Path) -> Path:
    return out / "resume" / "state"


def recover(out: Path) -> Path | None:
    """Finish or drop an interrupted state write (main process only); the usable state directory, if any."""
    state = state_dir(out)
    recover_dir(state)
    return state if (state / "state.json").is_file() else None


def write_state(out: Path, tensors: dict[str, torch.Tensor], objects: dict[str, Any], meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    def fill(tmp: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        torch.save(objects, tmp / "objects.pt")
        write_json(tmp / "state.json", meta)
        fault_point("checkpoint-write")  # a complete temp state, not yet in place

    replace_dir(state_dir(out), fill)


@dataclass
class SavedState:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    objects: dict[str, Any]


META_KEYS = ("command", "step", "processes", "metrics_lines")
OBJECT_KEYS = ("optimizer", "scheduler", "stream", "rng")


def _damaged(out: Path, what: str) -> RunDirError:
    return RunDirError(
        f"--resume: the saved state in {state_dir(out)} is damaged ({what})",
        f"delete {out / 'resume'} to restart the run from step 0 with --resume, or start it again with --overwrite",
    )


def read_meta(out: Path) -> dict[str, Any]:
    """state.json, checked: a tampered or truncated file is a RunDirError, not a traceback mid-resume."""
    path = state_dir(out) / "state.json"
    try:
        meta = json_loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(out, f"state.json: {exc}") from exc
    if not isinstance(meta, dict) or any(k not in meta for k in META_KEYS):
        raise _damaged(out, f"state.json lacks {', '.join(META_KEYS)}")
    if not all(isinstance(meta[k], int) and not isinstance(meta[k], bool) for k in META_KEYS[1:]):
        raise _damaged(out, "state.json: step, processes and metrics_lines must be integers")
    return meta


def read_state(out: Path) -> SavedState | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state = state_dir(out)
    if not (state / "state.json").is_file():
        return None
    meta = read_meta(out)
    try:
        tensors = load_file(str(state / "tensors.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _damaged(out, f"tensors.safetensors: {first}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the error below says it all
            objects = torch.load(state / "objects.pt", weights_only=True)  # never unpickle code from a run dir
    except Exception as exc:
        raise _damaged(out, f"objects.pt cannot be read safely: {type(exc).__name__}") from exc
    if not isinstance(objects, dict) or any(k not in objects for k in OBJECT_KEYS):
        raise _damaged(out, f"objects.pt does not hold {', '.join(OBJECT_KEYS)}")
    return SavedState(meta, tensors, objects)


def rng_state() -> dict[str, Any]:
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    assert not isinstance(keys, str)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What training changes: trainable parameters (weights, or mask scores) and each masked layer's fixed mask or
    score threshold. Frozen weights are not stored: the command reloads them from its model."""
    tensors = {f"param.{n}": p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    for name, module in masked_modules(model).items():
        if module.grouped:
            continue  # its mask is the expansion of the group scores', stored below
        if module.scores is None:
            tensors[f"mask.{name}"] = module.mask.detach().cpu().clone()
        else:
            tensors[f"threshold.{name}"] = module.threshold.detach().cpu().reshape(1).clone()
    groups = getattr(model, GROUPS_MODULE, None)
    if groups is not None:  # structured mask training: the group thresholds and the protected groups
        tensors["groups.threshold"] = groups.threshold.detach().cpu().clone()
        tensors["groups.protected"] = groups.protected.detach().cpu().clone()
    return tensors


def restore_model(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    modules = masked_modules(model)
    with torch.no_grad():
        for key, value in tensors.items():
            kind, _, name = key.partition(".")
            if kind == "param":
                params[name].copy_(value)
            elif kind == "mask":
                modules[name].set_mask(value)
            elif kind == "threshold":
                modules[name].threshold = value.reshape(()).to(modules[name].weight.device)
            elif kind == "groups":
                getattr(model, GROUPS_MODULE).get_buffer(name).copy_(value)


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
