"""Loading torch files users hand us without running code from them, with errors that say what is wrong.

`torch.load(weights_only=True)` refuses any pickled object besides tensors and plain containers, and its errors
are pages long. Here a truncated or foreign file, and an object the safe load refuses, are one-line `ValueError`s
naming the file (and the refused object). Harmless objects that real checkpoints carry are let through: numpy
scalars and dtypes (a reference epochN.ckpt's `best_epoch_score`) and torch's version string.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_torch_file"]


def _harmless_globals() -> list[Any]:
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core")
    allowed: list[Any] = [np.dtype, core.multiarray.scalar, torch.torch_version.TorchVersion]
    return allowed + [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "bool")]


def load_torch_file(path: str | Path, *, what: str = "checkpoint", map_location: Any = "cpu",
                    trust: bool = False, trust_hint: str = "") -> Any:
    """The object `torch.save` wrote to `path`, loaded with `weights_only=True` (plus the harmless globals above).

    Args:
        path: The file.
        what: What the file should be, for errors ("sttr checkpoint", "training state").
        map_location: As for `torch.load`.
        trust: Load with `weights_only=False` (runs the file's pickled code): only for files from a trusted source.
        trust_hint: How the user can ask for `trust`, appended to the error about a refused object.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a torch file, truncated or corrupt, or holding an object the safe load refuses (named).
    """
    path = Path(path)
    if path.is_dir():  # e.g. a bundle folder given to a verb that takes checkpoints
        from .bundle import not_a_checkpoint

        raise ValueError(not_a_checkpoint(path, what))
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(_harmless_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
        if refused:
            raise ValueError(f"{path}: holds {' and '.join(refused)} besides tensors, which a safe load (torch.load "
                             f"weights_only=True) refuses{trust_hint}") from None
        raise _unreadable(path, what, err) from None
    except PermissionError as err:
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror})") from None
    # OSError: torch's zip reader on a file cut short inside its central directory ("[Errno 22] Invalid argument")
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, OSError) as err:
        raise _unreadable(path, what, err) from None


def _unreadable(path: Path, what: str, err: BaseException) -> ValueError:
    """A file torch.save did not write, or one it wrote that was cut short or damaged since (told apart by its first
    bytes: torch.save's zip format starts with PK, its legacy pickle format with the pickle protocol byte)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        return ValueError(f"{path}: not a {what} (neither the zip nor the legacy pickle format that torch.save "
                          "writes)")
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return ValueError(f"{path}: not a readable {what}, truncated or corrupt ({first.split('. ')[0]})")
