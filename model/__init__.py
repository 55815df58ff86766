"""sttr.model: skeleton layouts and graphs (numpy only) and the ST-TR network family (torch).

`import sttr.model` imports nothing heavy; the torch-based names below load on first access, e.g.
`from sttr.model import STTR, load_reference_checkpoint`.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "STTRConfig": "config", "PRESETS": "config", "preset": "config",
    "STTR": "sttr", "Checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "load_reference_checkpoint": "convert", "Ensemble": "fusion", "fuse_scores": "fusion",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
