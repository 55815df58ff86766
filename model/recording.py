"""The skeleton recording file: the `.npz` that `sttr-live --replay` plays and the demo ships (numpy only).

Keys: `joints` (T, P, V, D) float32 (D = 2 image or 3 world coordinates; zeros for an absent person), `scores`
(T, P, V) float32, `fps` (scalar), `layout` (layout name), optional `label` and `name` (strings). Written by the
training side (held-out sequences for the demo) and read by `realtime/sources/replay.py`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_open

__all__ = ["save_recording"]


def save_recording(path: str | Path, joints: np.ndarray, scores: np.ndarray | None, fps: float, layout: str,
                   label: str | None = None, name: str | None = None) -> Path:
    """Write a recording atomically; `scores` default to 1 where a joint is non-zero."""
    path = Path(path)
    joints = np.asarray(joints, dtype=np.float32)
    if joints.ndim != 4:
        raise ValueError(f"{path}: joints must be (T, P, V, D), got shape {joints.shape}")
    if scores is None:
        scores = (np.abs(joints).sum(axis=3) > 0).astype(np.float32)
    arrays = {"joints": joints, "scores": np.asarray(scores, dtype=np.float32), "fps": np.float64(fps),
              "layout": np.str_(layout)}
    if label is not None:
        arrays["label"] = np.str_(label)
    if name is not None:
        arrays["name"] = np.str_(name)
    with atomic_open(path) as f:
        np.savez_compressed(f, **arrays)
    return path
