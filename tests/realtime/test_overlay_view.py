"""Terminal view and OpenCV overlay (recording only; no display here)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from sttr.realtime import messages as msg
from sttr.realtime.frame import SkeletonFrame
from sttr.realtime.terminal_view import TerminalView

PRED = msg.prediction_payload(
    stream="s", seq=4,
    window={"first_frame": 0, "last_frame": 63, "frames": 64, "fps": 30.0, "t_first_ms": 0.0, "t_last_ms": 2100.0},
    persons=[2, 5], topk=[("waving", 1, 0.75), ("clapping", 0, 0.2)], model="m", backend="onnxruntime",
    latency_ms={"capture": 1.0, "pose": 30.0, "buffer": 0.5, "inference": 6.25, "publish": 0.01, "total": 40.5})
STATUS = msg.status_payload(stream="s", input_fps=29.7, frames_dropped=3, persons_seen=2, queue_depth=0,
                            backend="onnxruntime", errors=["boom"])


def test_terminal_view_lines():
    out = io.StringIO()
    view = TerminalView(stream=out, period_s=0.0, live=False)
    view.on_status(STATUS)
    view.on_prediction(PRED)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "29.7 fps" in lines[1] and "dropped 3" in lines[1] and "error: boom" in lines[1]
    assert "#4 waving 0.75 | clapping 0.20" in lines[1] and "infer 6.2 ms" in lines[1] and "persons 2,5" in lines[1]


def test_terminal_view_redraws_one_line_when_live():
    out = io.StringIO()
    view = TerminalView(stream=out, period_s=0.0, live=True)
    view.on_prediction(PRED)
    view.on_status(STATUS)
    view.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1


def _frame(i: int, image: np.ndarray) -> SkeletonFrame:
    rng = np.random.default_rng(i)
    joints = rng.uniform(0.2, 0.8, size=(1, 18, 2)).astype(np.float32)
    return SkeletonFrame(layout="openpose18", timestamp_ms=i * 33.3, index=i, joints=joints,
                         scores=np.ones((1, 18), np.float32), track_ids=[0], image=image)


def test_overlay_records_drawn_frames_atomically(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from sttr.realtime.overlay import Overlay

    out = tmp_path / "out.avi"
    overlay = Overlay(record=out, fps=10.0)
    image = np.zeros((96, 128, 3), np.uint8)
    overlay.on_prediction(PRED)
    for i in range(5):
        overlay.on_frame(_frame(i, image), None)
    assert not out.exists()  # written to a temporary file until closed
    overlay.close()
    assert image.max() == 0  # the source image is not drawn on
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 5 and frames[0].shape == (96, 128, 3)
    assert frames[0].max() > 100  # skeleton lines and the top-k text were drawn
    assert not list(tmp_path.glob(".*tmp*"))


def test_world_coordinates_are_drawn_from_their_image_landmarks():
    pytest.importorskip("cv2")
    from sttr.realtime.overlay import draw_skeletons

    # MediaPipe world landmarks: metres around the hips (x, y in [-0.5, 0.5]), drawn as pixels they sat at (0, 0)
    rng = np.random.default_rng(0)
    world = rng.uniform(-0.5, 0.5, size=(1, 33, 3)).astype(np.float32)
    on_image = rng.uniform(0.6, 0.9, size=(1, 33, 2)).astype(np.float32)  # the person is at the right
    scores = np.ones((1, 33), np.float32)
    image = draw_skeletons(np.zeros((100, 200, 3), np.uint8),
                           SkeletonFrame("mediapipe33", 0.0, 0, world, scores, image_joints=on_image))
    cols = np.flatnonzero(image.max(axis=(0, 2)))
    assert cols.size and cols.min() >= 0.6 * 200 - 4  # nothing at the left edge
    bare = draw_skeletons(np.zeros((100, 200, 3), np.uint8), SkeletonFrame("mediapipe33", 0.0, 0, world, scores))
    assert bare.max() == 0  # no image landmarks: drawn nowhere rather than in the wrong place


def test_overlay_rejects_missing_folder(tmp_path):
    pytest.importorskip("cv2")
    from sttr.realtime.overlay import Overlay

    with pytest.raises(FileNotFoundError, match="does not exist"):
        Overlay(record=tmp_path / "missing" / "x.mp4")


def test_show_without_display_is_a_clear_error(monkeypatch):
    from sttr.realtime import overlay

    monkeypatch.setattr(overlay.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="--show needs a display.*--record"):
        overlay.Overlay(show=True)
