"""The resumable training state (`last.pt`): model, optimiser, scheduler, scaler, RNG states, epoch, best metric.

Written atomically (temp file + os.replace), so an interrupted write never replaces a good file; loadable with
`torch.load(weights_only=True)` (the numpy RNG state is stored as a tensor).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sttr.model.atomic import atomic_open
from sttr.model.torch_files import load_torch_file

__all__ = ["FORMAT", "rng_state", "set_rng_state", "atomic_torch_save", "load_state"]

FORMAT = "sttr.train_state/1"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA generator states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                                                    "pos": int(pos), "has_gauss": int(has_gauss),
                                                    "cached": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned (CUDA states only when CUDA is available and they were saved)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, then os.replace: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        torch.save(obj, f)


def load_state(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a `last.pt`; raises ValueError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training state to resume from: {path} does not exist")
    state = load_torch_file(path, what="training state", map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a training state (expected format {FORMAT!r})")
    return state
