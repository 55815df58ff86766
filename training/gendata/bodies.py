"""Choosing the persons of a clip: the slots with the largest motion energy (spec §4.2)."""
from __future__ import annotations

import numpy as np

__all__ = ["motion_energy", "select_bodies"]


def motion_energy(body: np.ndarray, legacy: bool = False) -> float:
    """Energy of one body slot (F, V, C): sum over channels of the std over the frames where the slot is non-empty.

    As the reference: std over all joints of those frames, per channel; 0 for a slot that is never present.
    A frame is empty when all its values are zero; `legacy=True`: when they sum to zero (the reference's test).
    """
    present = body.sum(-1).sum(-1) != 0 if legacy else np.any(body != 0, axis=(1, 2))
    if not present.any():
        return 0.0
    valid = body[present].astype(np.float64)
    return float(sum(valid[..., c].std() for c in range(valid.shape[-1])))


def select_bodies(joints: np.ndarray, num: int = 2, max_slots: int | None = 4, legacy: bool = False) -> np.ndarray:
    """Keep the `num` body slots with the largest motion energy, in descending energy order.

    Equal energies keep the earlier slot first; `legacy=True` orders them as the reference does (`argsort()[::-1]`
    of the energies of `max_slots` slots, numpy's default sort, whose order of equal values depends on the numpy
    version and CPU).

    Args:
        joints: (F, B, V, C) bodies per frame, slot = order within the frame (zeros where absent). Pass the float64
            values read from the file to rank exactly as the reference (float32 ones may swap near-equal bodies).
        num: Slots to keep (M); fewer bodies are zero-padded.
        max_slots: Consider only the first slots (the reference reads 4); None for all.
        legacy: Empty frames are those whose values sum to zero (`motion_energy`); ties as the reference.

    Returns:
        (F, num, V, C) float32.
    """
    if joints.ndim != 4:
        raise ValueError(f"expected bodies (F, B, V, C), got shape {joints.shape}")
    if max_slots is not None:
        joints = joints[:, :max_slots]
    frames, slots, joints_per_body, channels = joints.shape
    energy = np.zeros(max(slots, max_slots or 0) if legacy else slots)  # the reference ranks 4 slots, absent ones 0
    energy[:slots] = [motion_energy(joints[:, b], legacy) for b in range(slots)]
    order = energy.argsort()[::-1][:num] if legacy else np.argsort(-energy, kind="stable")[:num]
    out = np.zeros((frames, num, joints_per_body, channels), dtype=np.float32)
    for k, b in enumerate(order):
        if b < slots:  # else an absent slot: stays zero
            out[:, k] = joints[:, b]
    return out
