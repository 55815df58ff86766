"""Choosing the persons of a clip: the slots with the largest motion energy (spec §4.2)."""
from __future__ import annotations

import numpy as np

__all__ = ["motion_energy", "select_bodies"]


def motion_energy(body: np.ndarray) -> float:
    """Energy of one body slot (F, V, C): sum over channels of the std over the frames where the slot is non-empty.

    As the reference: std over all joints of those frames, per channel; 0 for a slot that is never present.
    """
    present = np.any(body != 0, axis=(1, 2))
    if not present.any():
        return 0.0
    valid = body[present].astype(np.float64)
    return float(sum(valid[..., c].std() for c in range(valid.shape[-1])))


def select_bodies(joints: np.ndarray, num: int = 2, max_slots: int | None = 4) -> np.ndarray:
    """Keep the `num` body slots with the largest motion energy, in descending energy order.

    Args:
        joints: (F, B, V, C) bodies per frame, slot = order within the frame (zeros where absent).
        num: Slots to keep (M); fewer bodies are zero-padded.
        max_slots: Consider only the first slots (the reference reads 4); None for all.

    Returns:
        (F, num, V, C) float32.
    """
    if joints.ndim != 4:
        raise ValueError(f"expected bodies (F, B, V, C), got shape {joints.shape}")
    if max_slots is not None:
        joints = joints[:, :max_slots]
    frames, slots, joints_per_body, channels = joints.shape
    energy = np.array([motion_energy(joints[:, b]) for b in range(slots)])
    order = np.argsort(-energy, kind="stable")[:num]
    out = np.zeros((frames, num, joints_per_body, channels), dtype=np.float32)
    out[:, : len(order)] = joints[:, order]
    return out
