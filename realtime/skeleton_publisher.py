"""The pose-only half of the two-process set-up: a source's skeleton frames published as ``skel.<stream>``.

One pose process per camera runs this (``sttr-live --camera 0 --publish-skeletons ADDR --stream cam0``); one
``sttr serve`` consumes many of them (``realtime.service``). Frames are sent in the source layout (the service adapts
them to its model) with the encoder every ``sttr.skeleton/1`` sender uses (``sources.zmq_skeleton``), on a
``Publisher``: non-blocking, so a slow or absent service never stalls the camera (what does not fit is dropped and
shows up at the service as a gap in the frame indices). numpy only.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .messages import check_stream_id
from .source_loop import SourceLoop
from .sources.zmq_skeleton import encode_skeleton_frame

__all__ = ["SkeletonPublisher", "PublishStats"]

logger = logging.getLogger(__name__)


@dataclass
class PublishStats:
    """What a publishing run did."""

    frames: int = 0
    sent: int = 0
    dropped: int = 0  # not sent: the publisher's queue was full
    errors: int = 0  # frames that could not be encoded (non-finite numbers)
    wall_s: float = 0.0

    @property
    def input_fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


class SkeletonPublisher(SourceLoop):
    """Read a pose source and publish each frame as one ``skel.<stream>`` message.

    Args:
        source: iterable of SkeletonFrame (closing it is the caller's job).
        publisher: a ``Publisher`` (``send_raw(topic, data) -> bool`` and ``fmt``).
        stream: stream id of the topic and payload.
        max_frames: stop after this many frames (None: until the source ends or ``stop()``).
    """

    def __init__(self, source: Iterable[Any], publisher: Any, stream: str, max_frames: int | None = None) -> None:
        self.source, self.publisher = source, publisher
        self.stream = check_stream_id(stream)
        self.max_frames = max_frames
        self.stats = PublishStats()
        super().__init__()
        self.running = False  # False before run(): a signal handler must interrupt whatever waits before it

    def run(self) -> PublishStats:
        t0 = time.perf_counter()
        self.running = True
        try:
            for frame in self.frames(self.source):
                self._send(frame)
                if self.max_frames and self.stats.frames >= self.max_frames:
                    break
        finally:
            self.stats.wall_s = time.perf_counter() - t0
        return self.stats

    def _send(self, frame: Any) -> None:
        self.stats.frames += 1
        try:
            topic, data = encode_skeleton_frame(frame, self.stream, self.publisher.fmt)
        except ValueError as exc:  # a pose estimator's NaN: skip the frame, the service sees an index gap
            self.stats.errors += 1
            logger.warning("frame %d not sent: %s", frame.index, exc)
            return
        if self.publisher.send_raw(topic, data):
            self.stats.sent += 1
        else:
            self.stats.dropped += 1
