"""Joints a model must never see: non-finite or absurdly large coordinates become missing detections.

A NaN from an OpenPose file, or a finite 1e38 from an external pose estimator, survives the adapters and the ring
buffer and turns the model's whole output into NaN (preprocessing squares and sums coordinates). `FrameGuard` zeroes
such joints and their scores, the way every source marks a joint it did not detect, so the frame goes on with what
is valid. numpy only; the pipeline and the multi-stream service each keep one.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

__all__ = ["FrameGuard", "MAX_ABS_COORDINATE"]

logger = logging.getLogger(__name__)

# far beyond any pixel (8K video), normalised or metre coordinate, yet its square stays finite in float32
MAX_ABS_COORDINATE = 1e5


class FrameGuard:
    """Replace invalid joints by missing ones (coordinates 0, score 0); counts the frames that had any.

    Args:
        name: what the one warning names (e.g. the stream).
        limit: largest valid absolute coordinate.
    """

    def __init__(self, name: str = "input", limit: float = MAX_ABS_COORDINATE) -> None:
        self.name, self.limit = name, float(limit)
        self.frames_fixed = 0

    def __call__(self, frame: Any) -> Any:
        """The frame itself when every joint is valid, else a copy with the invalid joints marked missing."""
        joints, scores = frame.joints, frame.scores
        if joints.size == 0:
            return frame
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(joints) <= self.limit).all(axis=-1) | ~np.isfinite(scores)
        if not bad.any():
            return frame
        self.frames_fixed += 1
        if self.frames_fixed == 1:
            logger.warning("%s frame %s: %d joint(s) with non-finite or absurd values (|x| > %g) taken as not "
                           "detected (later frames like it are only counted)", self.name, frame.index,
                           int(bad.sum()), self.limit)
        joints = np.where(bad[..., None], 0.0, joints).astype(np.float32)
        scores = np.where(bad, 0.0, scores).astype(np.float32)
        return replace(frame, joints=joints, scores=scores)
