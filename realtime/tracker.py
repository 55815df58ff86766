"""Stable person slots across frames: greedy nearest-centroid matching with constant-velocity prediction.

Pose estimators return persons in an arbitrary order each frame; the model wants person m to stay in slot m
(NTU holds at most M = 2). The tracker keeps M slots. Each frame it predicts every live track's centroid
(last centroid + velocity x elapsed time), pairs tracks and detections greedily, nearest pair first, within
`max_distance`, and gives unmatched detections the free slots, most confident first. A slot whose track has
not been seen for `timeout_ms` is freed. No Hungarian solver: with M <= a few persons, greedy on predicted
centroids is as good and needs nothing but numpy.

When the frame already carries `track_ids` (a source that tracks, e.g. the MediaPipe source, which matches on image
positions because world landmarks are all centred on their own hips, or a ZeroMQ sender that sends ids), those ids
are kept: a known id keeps its slot, a new id takes a free slot. Set `use_source_ids=False` to ignore them.

Output: a `SkeletonFrame` with exactly M persons ordered by slot; an empty slot (or a track not seen in this
frame) holds zeros with score 0 and track id -1 (empty) or its id (kept, missing now).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace

import numpy as np

from .frame import SkeletonFrame

__all__ = ["PersonTracker", "EMPTY_ID"]

logger = logging.getLogger(__name__)

EMPTY_ID = -1


MIN_FRAME_INTERVAL_MS = 1000.0 / 120.0  # no camera we serve runs faster than 120 fps


@dataclass
class _Track:
    track_id: int
    centroid: np.ndarray  # (D,)
    velocity: np.ndarray  # (D,) per millisecond
    last_seen_ms: float

    def predict(self, now_ms: float) -> np.ndarray:
        return self.centroid + self.velocity * (now_ms - self.last_seen_ms)


def _centroids(joints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(P, D) mean of the detected joints (score > 0) of each person; all joints when none is scored."""
    weights = (scores > 0).astype(np.float32)  # (P, V)
    counts = weights.sum(axis=1, keepdims=True)  # (P, 1)
    weights = np.where(counts > 0, weights, 1.0)
    return (joints * weights[..., None]).sum(axis=1) / weights.sum(axis=1, keepdims=True)


class PersonTracker:
    """Assign persons to at most `max_persons` stable slots.

    Args:
        max_persons: M, the number of slots (the model's person axis).
        timeout_ms: A track not seen for longer than this frees its slot.
        max_distance: Largest centroid distance (in the frame's units: metres, or normalised image units)
            for a detection to continue a track; None accepts any distance.
        velocity_smoothing: Weight of the newest velocity estimate in the exponential average (0 disables
            prediction entirely, 1 uses only the last step).
        use_source_ids: Trust `frame.track_ids` when a frame has them (see the module docstring).
    """

    def __init__(self, max_persons: int = 2, timeout_ms: float = 1000.0, max_distance: float | None = None,
                 velocity_smoothing: float = 0.5, use_source_ids: bool = True) -> None:
        if max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {max_persons}")
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms}")
        if not 0.0 <= velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing must be in [0, 1], got {velocity_smoothing}")
        self.max_persons = max_persons
        self.timeout_ms = float(timeout_ms)
        self.max_distance = max_distance
        self.velocity_smoothing = float(velocity_smoothing)
        self.use_source_ids = use_source_ids
        self.last_assignment: dict[int, int] = {}  # slot -> person index in the last frame given to update()
        self._slots: list[_Track | None] = [None] * max_persons
        self._next_id = itertools.count()

    @property
    def track_ids(self) -> list[int]:
        """Track id per slot, EMPTY_ID for a free slot."""
        return [EMPTY_ID if t is None else t.track_id for t in self._slots]

    def reset(self) -> None:
        """Forget every track (ids keep increasing)."""
        self._slots = [None] * self.max_persons

    def update(self, frame: SkeletonFrame) -> SkeletonFrame:
        """Match this frame's persons to slots; return the frame with M persons ordered by slot."""
        now = float(frame.timestamp_ms)
        self._expire(now)
        centroids = _centroids(frame.joints, frame.scores)  # (P, D)
        source_ids = frame.track_ids if self.use_source_ids and frame.track_ids is not None else None
        if source_ids is not None:
            assignment = self._match_ids(source_ids)
        else:
            assignment = self._match(centroids, now)  # slot -> detection
        self._assign_new(assignment, frame.scores, centroids, now, source_ids)
        for slot, det in assignment.items():
            self._observe(slot, centroids[det], now)
        self.last_assignment = dict(assignment)
        return self._output(frame, assignment)

    def _expire(self, now: float) -> None:
        for slot, track in enumerate(self._slots):
            if track is not None and now - track.last_seen_ms > self.timeout_ms:
                logger.debug("track %d left slot %d (unseen for %.0f ms)", track.track_id, slot,
                             now - track.last_seen_ms)
                self._slots[slot] = None

    def _match(self, centroids: np.ndarray, now: float) -> dict[int, int]:
        live = [(s, t) for s, t in enumerate(self._slots) if t is not None]
        if not live or len(centroids) == 0:
            return {}
        predicted = np.stack([t.predict(now) for _, t in live])  # (L, D)
        dist = np.linalg.norm(predicted[:, None, :] - centroids[None, :, :], axis=2)  # (L, P)
        assignment: dict[int, int] = {}
        used: set[int] = set()
        for flat in np.argsort(dist, axis=None, kind="stable"):
            i, det = divmod(int(flat), dist.shape[1])
            slot = live[i][0]
            if slot in assignment or det in used:
                continue
            if self.max_distance is not None and dist[i, det] > self.max_distance:
                break
            assignment[slot] = det
            used.add(det)
        return assignment

    def _match_ids(self, source_ids: list[int]) -> dict[int, int]:
        by_id = {t.track_id: s for s, t in enumerate(self._slots) if t is not None}
        return {by_id[tid]: det for det, tid in enumerate(source_ids) if tid >= 0 and tid in by_id}

    def _assign_new(self, assignment: dict[int, int], scores: np.ndarray, centroids: np.ndarray,
                    now: float, source_ids: list[int] | None = None) -> None:
        used = set(assignment.values())
        fresh = [int(d) for d in np.argsort(-scores.sum(axis=1), kind="stable") if int(d) not in used
                 and (source_ids is None or source_ids[int(d)] >= 0)]  # a negative source id is an empty slot
        free = [s for s, t in enumerate(self._slots) if t is None]
        for slot, det in zip(free, fresh):
            new_id = next(self._next_id) if source_ids is None else source_ids[det]
            track = _Track(new_id, centroids[det].copy(), np.zeros_like(centroids[det]), now)
            self._slots[slot] = track
            assignment[slot] = int(det)
            logger.debug("track %d entered slot %d", track.track_id, slot)
        if len(fresh) > len(free):
            logger.debug("%d person(s) beyond the %d slots dropped", len(fresh) - len(free), self.max_persons)

    def _observe(self, slot: int, centroid: np.ndarray, now: float) -> None:
        track = self._slots[slot]
        assert track is not None
        dt = now - track.last_seen_ms
        if dt > 0:
            # Frames stamped closer than a real camera could deliver them (files read as fast as possible)
            # would turn jitter into huge velocities; treat them as at least MIN_FRAME_INTERVAL_MS apart.
            step = (centroid - track.centroid) / max(dt, MIN_FRAME_INTERVAL_MS)
            a = self.velocity_smoothing
            track.velocity = a * step + (1.0 - a) * track.velocity
        track.centroid = centroid.copy()
        track.last_seen_ms = now

    def _output(self, frame: SkeletonFrame, assignment: dict[int, int]) -> SkeletonFrame:
        m, v, d = self.max_persons, frame.num_joints, frame.num_dims
        joints = np.zeros((m, v, d), np.float32)
        scores = np.zeros((m, v), np.float32)
        for slot, det in assignment.items():
            joints[slot] = frame.joints[det]
            scores[slot] = frame.scores[det]
        return replace(frame, joints=joints, scores=scores, track_ids=self.track_ids)
