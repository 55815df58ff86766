"""Pose sources: each is an iterable of `SkeletonFrame`s with `close()`, context-manager support and a
`frames_dropped` count (frames lost to the newest-wins policy, skipped files, bad messages, late replays).

==============  =====================================  ============================================================
kind            class                                  yields
==============  =====================================  ============================================================
camera / video  `mediapipe_pose.MediaPipePoseSource`   `mediapipe33`, world metres (D=3) or image [0, 1] (D=2)
/ url           over `capture.VideoCapture`
openpose        `openpose_dir.OpenPoseDirSource`       `body25` / `openpose18`, pixels or [0, 1] (D=2)
zmq             `zmq_skeleton.ZmqSkeletonSource`       whatever layout the sender names (`sttr.skeleton/1`)
replay          `replay.ReplaySource`                  the recording's layout
==============  =====================================  ============================================================

Heavy dependencies (OpenCV, MediaPipe, pyzmq) are imported when a source is opened, never at import time.
"""
from __future__ import annotations

from typing import Any

__all__ = ["open_source", "SOURCE_KINDS"]

SOURCE_KINDS = ("camera", "video", "url", "openpose", "zmq", "replay")


def open_source(kind: str, target: Any, **options: Any) -> Any:
    """Open a source by kind (what the CLI flags map to), passing `options` to its constructor.

    Args:
        kind: One of `SOURCE_KINDS`.
        target: Camera index, video path, stream URL, OpenPose folder, ZeroMQ endpoint or `.npz` recording.
        **options: Keyword arguments of the source class (e.g. `coordinates='world'`, `follow=False`).

    Raises:
        ValueError: An unknown kind.
    """
    if kind in ("camera", "video", "url"):
        from .mediapipe_pose import MediaPipePoseSource

        return MediaPipePoseSource(int(target) if kind == "camera" else str(target), **options)
    if kind == "openpose":
        from .openpose_dir import OpenPoseDirSource

        return OpenPoseDirSource(target, **options)
    if kind == "zmq":
        from .zmq_skeleton import ZmqSkeletonSource

        return ZmqSkeletonSource(str(target), **options)
    if kind == "replay":
        from .replay import ReplaySource

        return ReplaySource(target, **options)
    raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
