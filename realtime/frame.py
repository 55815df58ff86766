"""The unit every pose source yields: one frame of skeletons, persons x joints x channels.

numpy only (no torch, no mediapipe): the live pipeline, the ZeroMQ decoder and the tests build these directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

__all__ = ["SkeletonFrame"]


@dataclass
class SkeletonFrame:
    """One frame of skeletons from a source.

    Attributes:
        layout: Name of the source layout (`mediapipe33`, `openpose18`, `body25`, `ntu25`, ...); the joint order of V.
        timestamp_ms: Capture time in milliseconds on the monotonic clock (`time.monotonic()` based), or the
            media time of the frame for file sources that run faster than real time.
        index: Frame index in the source (0-based, increasing; gaps mean dropped frames).
        joints: float32 (P, V, D) joint coordinates of P persons; D = 2 (image x, y) or 3 (x, y, z).
            Image coordinates are normalised to [0, 1] (x / width, y / height, y down) where the source knows the
            image size, else pixels; world coordinates are metres (see each source and `realtime.adapters`).
        scores: float32 (P, V) per-joint confidence in [0, 1] (0 = not detected).
        track_ids: Stable person ids (one per person) once a tracker has run, else None.
        image: The BGR uint8 image the skeletons came from, when the source has pixels.
        image_joints: float32 (P, V, 2) image coordinates in [0, 1] of the same persons when `joints` are not image
            coordinates (MediaPipe world landmarks, metres), so an overlay can draw them on `image`; else None.
        timings_ms: Stage durations in milliseconds, e.g. {"capture": 0.4, "pose": 31.2}.
    """

    layout: str
    timestamp_ms: float
    index: int
    joints: np.ndarray
    scores: np.ndarray
    track_ids: list[int] | None = None
    image: np.ndarray | None = None
    image_joints: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joints = np.asarray(self.joints, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        if self.joints.ndim != 3 or self.joints.shape[2] not in (2, 3):
            raise ValueError(f"SkeletonFrame.joints: expected shape (P, V, 2|3), got {self.joints.shape}")
        if self.scores.shape != self.joints.shape[:2]:
            raise ValueError(f"SkeletonFrame.scores: expected shape {self.joints.shape[:2]} (P, V) to match joints "
                             f"{self.joints.shape}, got {self.scores.shape}")
        if self.track_ids is not None:
            self.track_ids = [int(t) for t in self.track_ids]
            if len(self.track_ids) != self.joints.shape[0]:
                raise ValueError(f"SkeletonFrame.track_ids: expected {self.joints.shape[0]} ids (one per person), "
                                 f"got {len(self.track_ids)}")

    @property
    def num_persons(self) -> int:
        return int(self.joints.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.joints.shape[1])

    @property
    def num_dims(self) -> int:
        return int(self.joints.shape[2])

    @classmethod
    def empty(cls, layout: str, num_joints: int, num_dims: int, timestamp_ms: float, index: int,
              **kwargs) -> "SkeletonFrame":
        """A frame with no person in it (P = 0)."""
        return cls(layout=layout, timestamp_ms=timestamp_ms, index=index,
                   joints=np.zeros((0, num_joints, num_dims), np.float32),
                   scores=np.zeros((0, num_joints), np.float32), **kwargs)

    def select(self, persons: list[int]) -> "SkeletonFrame":
        """A copy holding only the given persons (by position), in that order."""
        ids = None if self.track_ids is None else [self.track_ids[p] for p in persons]
        return SkeletonFrame(layout=self.layout, timestamp_ms=self.timestamp_ms, index=self.index,
                             joints=self.joints[persons], scores=self.scores[persons], track_ids=ids,
                             image=self.image, timings_ms=dict(self.timings_ms),
                             image_joints=None if self.image_joints is None else self.image_joints[persons])
