"""Replay a recorded skeleton sequence as SkeletonFrames, at its real rate or as fast as possible.

A recording is an `.npz` with::

    joints  float (T, P, V, D)   D = 2 (image) or 3 (world); zeros for an absent person
    scores  float (T, P, V)      optional; 1 where a joint is non-zero when missing
    fps     scalar               frames per second of the recording
    layout  str                  layout name (`ntu25`, `kinect20`, `openpose18`, ...)
    label   str                  optional: the action, for demos and checks
    name    str                  optional: the sample name

`save_replay` writes one (atomically). The out-of-the-box demo replays held-out real MSR Action3D sequences
through `ReplaySource`. numpy only.
"""
from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from sttr.model.recording import save_recording
from sttr.model.skeleton import get_layout

from ..frame import SkeletonFrame

__all__ = ["ReplaySource", "Recording", "load_replay", "save_replay"]

logger = logging.getLogger(__name__)


class Recording:
    """A loaded recording: `joints` (T, P, V, D), `scores` (T, P, V), `fps`, `layout`, `label`, `name`."""

    def __init__(self, joints: np.ndarray, scores: np.ndarray | None, fps: float, layout: str,
                 label: str | None = None, name: str | None = None, where: str = "recording") -> None:
        joints = np.asarray(joints, dtype=np.float32)
        if joints.ndim != 4 or joints.shape[3] not in (2, 3):
            raise ValueError(f"{where}: joints must be (T, P, V, D) with D = 2 or 3, got {joints.shape}")
        if scores is None:
            scores = (np.abs(joints).sum(axis=3) > 0).astype(np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != joints.shape[:3]:
            raise ValueError(f"{where}: scores must be (T, P, V) = {joints.shape[:3]}, got {scores.shape}")
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"{where}: fps must be a positive number, got {fps}")
        known = get_layout(layout)  # KeyError names the known layouts
        if known.num_joints != joints.shape[2]:
            raise ValueError(f"{where}: layout {layout!r} has {known.num_joints} joints, joints has {joints.shape[2]}")
        self.joints, self.scores, self.fps, self.layout = joints, scores, float(fps), str(layout)
        self.label, self.name = label, name

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def _text(value: np.ndarray | None) -> str | None:
    return None if value is None else str(np.asarray(value).item())


def load_replay(path: str | Path) -> Recording:
    """Read a recording `.npz` (see the module docstring); errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"skeleton recording {path} does not exist")
    if not zipfile.is_zipfile(path):  # else np.load reads it as a pickle and suggests allow_pickle: never
        raise ValueError(f"{path} is not a skeleton recording: expected an .npz with joints (T, P, V, D), fps and "
                         f"layout (written by save_replay); a video goes with --video")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("joints", "fps", "layout") if k not in data.files]
        if missing:
            raise ValueError(f"{path}: missing {missing}; a recording needs joints (T, P, V, D), fps and layout "
                             f"(optional: scores, label, name)")
        return Recording(data["joints"], data["scores"] if "scores" in data.files else None,
                         float(data["fps"]), _text(data["layout"]), _text(data.get("label")),
                         _text(data.get("name")), where=str(path))


def save_replay(path: str | Path, joints: np.ndarray, scores: np.ndarray | None, fps: float, layout: str,
                label: str | None = None, name: str | None = None) -> Path:
    """Write a recording `.npz` atomically (validated first)."""
    rec = Recording(joints, scores, fps, layout, label, name, where=str(path))
    return save_recording(path, rec.joints, rec.scores, rec.fps, rec.layout, label, name)


class ReplaySource:
    """Yield a recording's frames as SkeletonFrames.

    Args:
        recording: A `.npz` path or a `Recording`.
        realtime: Pace frames at `fps * speed` (True) or yield them as fast as they are taken (False).
        speed: Playback speed factor in real-time mode.
        loop: Start again after the last frame (indices keep increasing) until `close()`.
        drop_late: Real-time mode: when the consumer fell behind by more than a frame, skip to the frame that is
            due now (like a live camera) instead of delivering every late frame; skips count in `stats['dropped']`.
        clock, sleep: Monotonic clock in seconds and the matching sleep (injected by tests).

    Frames: persons that are entirely zero in a frame (padding) are left out; `index` counts from 0;
    `timestamp_ms` is the scheduled delivery time on `clock` (real-time) or start + index / fps (as fast as
    possible).
    """

    def __init__(self, recording: str | Path | Recording, *, realtime: bool = True, speed: float = 1.0,
                 loop: bool = False, drop_late: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.recording = recording if isinstance(recording, Recording) else load_replay(recording)
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.realtime, self.speed, self.loop, self.drop_late = realtime, float(speed), loop, drop_late
        self._clock, self._sleep = clock, sleep
        self._closed = False
        self.stats = {"delivered": 0, "dropped": 0}

    @property
    def layout(self) -> str:
        return self.recording.layout

    @property
    def fps(self) -> float:
        return self.recording.fps

    @property
    def label(self) -> str | None:
        return self.recording.label

    def _frame(self, index: int, t: int, timestamp_ms: float) -> SkeletonFrame:
        joints, scores = self.recording.joints[t], self.recording.scores[t]  # (P, V, D), (P, V)
        present = (np.abs(joints).sum(axis=(1, 2)) > 0) | (scores.sum(axis=1) > 0)
        self.stats["delivered"] += 1
        return SkeletonFrame(layout=self.layout, timestamp_ms=timestamp_ms, index=index, joints=joints[present],
                             scores=scores[present])

    def __iter__(self) -> Iterator[SkeletonFrame]:
        period_s = 1.0 / (self.fps * (self.speed if self.realtime else 1.0))
        start = self._clock()
        n, index = self.recording.num_frames, 0
        while not self._closed:
            due = start + index * period_s
            if self.realtime:
                now = self._clock()
                if now < due:
                    self._sleep(due - now)
                elif self.drop_late and now - due >= period_s:
                    skip = int((now - due) / period_s)
                    if not self.loop:
                        skip = min(skip, n - 1 - index)
                    self.stats["dropped"] += skip
                    index += skip
                    due = start + index * period_s
            if index >= n and not self.loop:
                return
            yield self._frame(index, index % n, due * 1e3)
            index += 1
            if index >= n and not self.loop:
                return

    @property
    def frames_dropped(self) -> int:
        """Frames skipped by `drop_late`."""
        return self.stats["dropped"]

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "ReplaySource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
