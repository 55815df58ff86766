"""``--show`` / ``--record``: draw the skeletons and the newest top-k on each frame's image with OpenCV.

A pipeline observer. ``on_frame`` runs in the frame loop (the main thread, which OpenCV's HighGUI needs), draws the
source-layout skeletons of the frame plus the latest prediction (stored by ``on_prediction`` from the inference
thread), shows it in a window and/or writes it to a video file. The video is written to a temporary file next to
the target and moved into place by ``close()``. OpenCV is imported when an Overlay is made.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sttr.model.skeleton import get_layout

__all__ = ["Overlay", "draw_skeletons"]

logger = logging.getLogger(__name__)

_COLORS = ((0, 200, 255), (255, 120, 0), (0, 220, 0), (200, 0, 200))  # BGR per person


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("--show and --record need OpenCV: pip install 'sttr[live]' (opencv-python)") from exc
    return cv2


def _pixels(joints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(P, V, 2) source coordinates -> int pixel coordinates ([0, 1] normalised coordinates are scaled up)."""
    xy = joints[..., :2].astype(np.float32)
    if xy.size and np.nanmax(np.abs(xy)) <= 1.5:
        xy = xy * np.array([width, height], np.float32)
    return np.nan_to_num(xy).astype(np.int32)


def draw_skeletons(image: np.ndarray, frame: Any, min_score: float = 0.1) -> np.ndarray:
    """Draw the frame's persons (source layout, image coordinates) onto ``image`` in place; returns it.

    Frames whose joints are world coordinates (3-D, metres) are drawn from their ``image_joints``; without those
    nothing is drawn, since metres read as pixels would put the skeleton in the wrong place.
    """
    cv2 = _cv2()
    xy = getattr(frame, "image_joints", None)
    if xy is None:
        xy = frame.joints if frame.num_dims == 2 else None
    if frame.num_persons == 0 or xy is None:
        return image
    try:
        edges = get_layout(frame.layout).edges()
    except (KeyError, ValueError):
        edges = []
    h, w = image.shape[:2]
    pts = _pixels(xy, w, h)
    ids = frame.track_ids or list(range(frame.num_persons))
    for p in range(frame.num_persons):
        color = _COLORS[int(ids[p]) % len(_COLORS)] if ids[p] >= 0 else _COLORS[0]
        ok = frame.scores[p] > min_score
        for a, b in edges:
            if ok[a] and ok[b]:
                cv2.line(image, tuple(map(int, pts[p, a])), tuple(map(int, pts[p, b])), color, 2, cv2.LINE_AA)
        for v in np.flatnonzero(ok):
            cv2.circle(image, tuple(map(int, pts[p, v])), 3, color, -1, cv2.LINE_AA)
    return image


def _check_display() -> None:
    """OpenCV's Qt/GTK window aborts the whole process without a display: refuse first, with what to do."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError("--show needs a display (DISPLAY / WAYLAND_DISPLAY is not set, e.g. over ssh without -X); "
                           "use --record OUT.mp4 instead")


class Overlay:
    """Show and/or record frames with skeletons and the newest prediction.

    Args:
        show: open a window (needs a display).
        record: output video path (.mp4 or .avi), or None.
        fps: frame rate written to the recording.
        window_name: the window's title.
        on_quit: called when the user presses q or Esc in the window.
    """

    def __init__(self, show: bool = False, record: str | Path | None = None, fps: float = 30.0,
                 window_name: str = "sttr-live", on_quit: Callable[[], None] | None = None) -> None:
        if show:
            _check_display()
        self._cv2 = _cv2()
        self.show, self.fps, self.window_name = show, float(fps), window_name
        self.record = Path(record) if record is not None else None
        if self.record is not None and not self.record.parent.is_dir():
            raise FileNotFoundError(f"--record: folder {self.record.parent} does not exist")
        self._tmp = None if self.record is None else self.record.with_name(f".{self.record.stem}.tmp"
                                                                           f"{self.record.suffix}")
        self._writer = None
        self._pred: Mapping[str, Any] | None = None
        self.closed_by_user = False
        self._on_quit = on_quit
        self.frames_written = 0

    def on_prediction(self, payload: Mapping[str, Any]) -> None:
        self._pred = payload

    def on_status(self, payload: Mapping[str, Any]) -> None:
        pass

    def on_frame(self, frame: Any, tracked: Any) -> None:
        if frame.image is None:
            return
        image = frame.image.copy()
        draw_skeletons(image, frame)
        self._draw_text(image)
        if self.record is not None:
            self._write(image)
        if self.show:
            self._cv2.imshow(self.window_name, image)
            if self._cv2.waitKey(1) & 0xFF in (ord("q"), 27) and not self.closed_by_user:
                self.closed_by_user = True
                if self._on_quit is not None:
                    self._on_quit()

    def _draw_text(self, image: np.ndarray) -> None:
        cv2, pred = self._cv2, self._pred
        if pred is None:
            return
        y = 24
        for t in pred["topk"][:5]:
            text = f"{t['label']}: {t['score']:.2f}"
            cv2.putText(image, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
            y += 22
        lat = pred["latency_ms"]
        cv2.putText(image, f"{lat['total']:.0f} ms", (10, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1,
                    cv2.LINE_AA)

    def _write(self, image: np.ndarray) -> None:
        cv2 = self._cv2
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.record.suffix.lower() == ".mp4" else "MJPG"))
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"--record: OpenCV cannot write {self.record} (try a .avi or .mp4 path)")
        self._writer.write(image)
        self.frames_written += 1

    def close(self) -> None:
        """Close the window and finish the recording (moved into place atomically)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.record)
            logger.info("recorded %d frames to %s", self.frames_written, self.record)
        if self.show:
            self._cv2.destroyWindow(self.window_name)
