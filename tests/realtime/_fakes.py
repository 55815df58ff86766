"""Small numpy stand-ins for an engine and a source (the real ones are tested with real data elsewhere)."""
from __future__ import annotations

import threading
import time

import numpy as np

from sttr.realtime.frame import SkeletonFrame


class FakeEngine:
    """Logits from the window's mean: class 0 when joints sit high, class 1 when low; counts calls."""

    def __init__(self, num_classes: int = 3, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.num_classes, self.delay_s, self.gate = num_classes, delay_s, gate
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def run(self, windows: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.shapes.append(windows.shape)
        if self.gate is not None:
            self.gate.wait(5.0)
        if self.delay_s:
            time.sleep(self.delay_s)
        m = windows.reshape(windows.shape[0], -1).mean(axis=1)
        logits = np.zeros((windows.shape[0], self.num_classes), np.float32)
        logits[:, 0], logits[:, 1] = 4 * m, -4 * m
        return logits

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def synthetic_frames(n: int, persons: int = 2, joints: int = 25, fps: float = 30.0, layout: str = "ntu25",
                     start_index: int = 0, skip: tuple[int, ...] = ()):
    """n SkeletonFrames of 3D joints moving slowly, fake-clock timestamps, frames in ``skip`` left out."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(persons, joints, 3)).astype(np.float32)
    for i in range(start_index, start_index + n):
        if i in skip:
            continue
        yield SkeletonFrame(layout=layout, timestamp_ms=i * 1000.0 / fps, index=i,
                            joints=base + 0.01 * i, scores=np.ones((persons, joints), np.float32),
                            timings_ms={"capture": 0.5, "pose": 1.0})
