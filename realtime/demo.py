"""The out-of-the-box demo: real held-out skeletons through the whole live pipeline, truth next to prediction.

`sttr-live --demo` replays the bundled MSR Action3D recordings (test subjects the demo model never saw, see
`demo/NOTICE.md`) at their real rate (15 fps) through tracker → ring buffer → engine → ZeroMQ, while a
subscriber in this process (a real ZeroMQ SUB socket, as any other program would use) prints each prediction
next to the action being performed. Each recording is played `repeats` times in a row, like a person repeating
a gesture, so that the windows scored at the end of a recording hold that action only.

numpy only (plus pyzmq through `client`), like the rest of `realtime/`.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from .sources.replay import Recording, load_replay

__all__ = ["DEMO_DIR", "SEQUENCES_DIR", "Segment", "build_playlist", "TruthPrinter"]

DEMO_DIR = Path(__file__).resolve().parent / "demo"
SEQUENCES_DIR = DEMO_DIR / "sequences"


@dataclass(frozen=True)
class Segment:
    """Frames [first, last] of the playlist hold the action `label` (recording `name`)."""

    first: int
    last: int
    label: str
    name: str

    def holds(self, first_frame: int, last_frame: int) -> bool:
        """Whether a window lies entirely inside this segment."""
        return self.first <= first_frame and last_frame <= self.last


def build_playlist(folder: str | Path = SEQUENCES_DIR, repeats: int = 2) -> tuple[Recording, list[Segment]]:
    """All `.npz` recordings of `folder` (sorted by name), each repeated `repeats` times, as one recording.

    Raises:
        FileNotFoundError: no recording in `folder`.
        ValueError: recordings with different layouts, frame rates or joint shapes, or without a label.
    """
    folder = Path(folder)
    paths = sorted(folder.glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no demo recordings (*.npz) in {folder}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    recordings = [load_replay(p) for p in paths]
    first = recordings[0]
    joints, scores, segments, start = [], [], [], 0
    for path, rec in zip(paths, recordings):
        if (rec.layout, rec.fps, rec.joints.shape[1:]) != (first.layout, first.fps, first.joints.shape[1:]):
            raise ValueError(f"{path}: layout/fps/shape {rec.layout}, {rec.fps}, {rec.joints.shape[1:]} differ from "
                             f"{paths[0].name}: {first.layout}, {first.fps}, {first.joints.shape[1:]}")
        if not rec.label:
            raise ValueError(f"{path}: a demo recording needs its action label")
        length = rec.num_frames * repeats
        joints += [rec.joints] * repeats
        scores += [rec.scores] * repeats
        segments.append(Segment(start, start + length - 1, rec.label, rec.name or path.stem))
        start += length
    playlist = Recording(np.concatenate(joints), np.concatenate(scores), first.fps, first.layout,
                         label=None, name="sttr demo playlist")
    return playlist, segments


@dataclass
class _Tally:
    scored: int = 0
    correct: int = 0
    last_by_segment: dict[int, str] = field(default_factory=dict)


class TruthPrinter(threading.Thread):
    """Subscribe to the demo's predictions and print truth next to prediction (a daemon thread).

    A window counts as scored when it lies entirely inside one recording's frames; the last scored window of
    each recording gives that recording's final answer.
    """

    def __init__(self, addr: str, segments: list[Segment], stream: str, out: TextIO = sys.stdout) -> None:
        super().__init__(name="sttr-demo-subscriber", daemon=True)
        from .client import Subscriber

        self.segments, self.out = segments, out
        self.subscriber = Subscriber(addr, topics=(f"pred.{stream}",), timeout_s=0.2)
        self.tally = _Tally()
        self.received = 0
        self.last_seq = -1
        self._stop_event = threading.Event()

    def _segment_of(self, frame: int) -> int | None:
        for i, seg in enumerate(self.segments):
            if seg.first <= frame <= seg.last:
                return i
        return None

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                msg = self.subscriber.recv(timeout_s=0.2)
            except TimeoutError:
                continue
            self._show(msg)

    def _show(self, msg) -> None:
        self.received += 1
        self.last_seq = msg.seq
        w = msg.window
        i = self._segment_of(w.last_frame)
        truth = self.segments[i].label if i is not None else "?"
        scored = i is not None and self.segments[i].holds(w.first_frame, w.last_frame)
        mark = " "
        if scored:
            self.tally.scored += 1
            self.tally.correct += msg.label == truth
            self.tally.last_by_segment[i] = msg.label
            mark = "✓" if msg.label == truth else "✗"
        others = ", ".join(f"{t.label} {t.score:.2f}" for t in msg.topk[1:3])
        print(f"#{msg.seq:<3} frames {w.first_frame:4d}-{w.last_frame:<4d} truth: {truth:<20} predicted: "
              f"{msg.label:<20} {msg.score:.2f} {mark}  (then {others})  {msg.latency_ms.get('total', 0.0):.1f} ms",
              file=self.out, flush=True)

    def stop(self, expected: int, timeout_s: float = 3.0) -> None:
        """Wait until `expected` predictions arrived (or `timeout_s` passed), then close the socket."""
        deadline = time.monotonic() + timeout_s
        while self.received < expected and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.02)
        self._stop_event.set()
        self.join(timeout=2.0)
        self.subscriber.close()

    def summary(self) -> str:
        t = self.tally
        per_rec = sum(self.tally.last_by_segment.get(i) == seg.label for i, seg in enumerate(self.segments))
        pct = 100.0 * t.correct / t.scored if t.scored else 0.0
        return (f"demo: {self.received} predictions received over ZeroMQ; {t.correct}/{t.scored} windows inside one "
                f"recording correct ({pct:.0f}%); final answer right for {per_rec}/{len(self.segments)} recordings")
