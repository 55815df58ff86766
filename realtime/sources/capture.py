"""Image capture with OpenCV: a camera index, a video file, or an RTSP/HTTP URL.

Capture policy (explicit, as in ultralytics' `LoadStreams`):

* `realtime=True` (default): a capture thread reads frames as they come (a file is paced at its own fps) and keeps
  the `backlog` newest unread ones (default 2); an older one pushed out before the consumer took it counts as
  dropped (`stats.dropped`). The delay therefore cannot grow however slow the pose model is: at most `backlog - 1`
  frame intervals more than strictly newest-wins (`backlog=1`). Why 2: pose estimation on two cores keeps up with
  30 fps on average but not frame by frame (two slow estimates in a row, 90-106 ms each, on the two-person test
  video); one frame of slack absorbs those bursts (0 dropped in 7 of 7 runs of 1150 frames; with
  `backlog=1`, 1-2 dropped in 3 of 7) for a frame interval of delay during the burst.
* `realtime=False`: no thread; every frame is read on demand, none is dropped (files only; for benchmarks that run
  "as fast as it can", and for offline processing).

`mirror=True` flips every image left-right as it is read: for mirrored footage such as NTU RGB+D's Kinect v2 colour
videos (a person's left shoulder appears on the image left), so that pose estimators label left and right as the
NTU skeletons do. Webcams through OpenCV are not mirrored.

A camera or stream that stops delivering is released and reopened with exponential backoff (`retry_delays_s`);
each loss is logged and counted (`stats.reconnects`, `stats.last_error`, `state`). A video file that ends ends the
iteration. OpenCV is imported when a capture is opened.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["VideoCapture", "CapturedFrame", "CaptureStats", "CaptureError", "CameraNotFoundError", "parse_source"]

logger = logging.getLogger(__name__)

DEFAULT_BACKLOG = 2  # frames a realtime capture keeps unread before the oldest is dropped


class CaptureError(RuntimeError):
    """A capture could not be opened or was lost for good."""


class CameraNotFoundError(CaptureError):
    """A camera index that no camera answers to."""


@dataclass
class CapturedFrame:
    """One image from a capture.

    Attributes:
        image: BGR uint8 (H, W, 3).
        index: Frame index in the capture (0-based; gaps are frames dropped by the newest-wins policy).
        timestamp_ms: When the frame was read, monotonic clock, milliseconds.
        media_ms: Position in a file (index / fps), or equal to `timestamp_ms` for live sources.
        capture_ms: Time spent reading and decoding the frame.
    """

    image: np.ndarray
    index: int
    timestamp_ms: float
    media_ms: float
    capture_ms: float


@dataclass
class CaptureStats:
    """Counters a status message can report."""

    read: int = 0
    delivered: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


def parse_source(source: int | str | Path) -> tuple[str, int | str]:
    """Classify a source as ('camera', index), ('url', url) or ('file', path).

    Raises:
        FileNotFoundError: A path that does not exist.
    """
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return "camera", int(source)
    text = str(source)
    if "://" in text:
        return "url", text
    if not Path(text).is_file():
        raise FileNotFoundError(f"video file {text!r} does not exist (give a camera index such as 0, a file, "
                                f"or an rtsp:// / http:// URL)")
    return "file", text


def _camera_hint(index: int) -> str:
    return (f"camera {index} could not be opened: no camera with that index, or it is in use by another program; "
            f"list cameras with `ls /dev/video*` (Linux) or `v4l2-ctl --list-devices`, then pass --camera N, "
            f"or use --video FILE")


class VideoCapture:
    """Iterate over `CapturedFrame`s from a camera, a video file or a stream URL.

    Args:
        source: Camera index (int or digit string), a video file path, or an rtsp:// / http(s):// URL.
        realtime: Newest frame wins, captured in a thread (True); or read every frame on demand (False, files only).
        width, height, fps: Requested camera settings (cameras only; the camera may ignore them).
        mirror: Flip images left-right (mirrored footage, see the module docstring).
        retry_delays_s: Waits between reopen attempts after a camera/stream is lost; the last one repeats.
        max_retries: Give up (CaptureError) after this many failed reopen attempts in a row; None retries forever.
        loops: Play a file this many times in a row, as one stream (frame indices and media time go on across the
            seams): longer benchmark runs from a short clip.
        backlog: Realtime mode: unread frames kept before the oldest is dropped (1 = strictly the newest frame).
        clock: Monotonic clock in seconds (injected by tests).

    Raises:
        CameraNotFoundError: The camera index does not open.
        CaptureError: The file or URL cannot be opened.
        FileNotFoundError: The file does not exist.
    """

    def __init__(self, source: int | str | Path, *, realtime: bool = True, width: int | None = None,
                 height: int | None = None, fps: float | None = None, mirror: bool = False,
                 retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0), max_retries: int | None = None,
                 loops: int = 1, backlog: int = DEFAULT_BACKLOG,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind, self.target = parse_source(source)
        if loops < 1 or (loops > 1 and self.kind != "file"):
            raise ValueError(f"loops must be >= 1 and is for video files, got {loops} for {self.kind} {self.target!r}")
        self._plays_left = int(loops)
        if not realtime and self.kind != "file":
            raise ValueError(f"realtime=False reads every frame and is for video files; {self.kind} {self.target!r} "
                             f"is live")
        self.realtime = realtime
        if backlog < 1:
            raise ValueError(f"backlog must be >= 1 frame, got {backlog}")
        self.backlog = int(backlog)
        self.mirror = mirror
        self._settings = {"width": width, "height": height, "fps": fps}
        self.retry_delays_s = tuple(retry_delays_s) or (1.0,)
        self.max_retries = max_retries
        self._clock = clock
        self.stats = CaptureStats()
        self.state = "opening"
        self._cap = self._open()
        self.fps = float(self._cap.get(_cv2().CAP_PROP_FPS) or 0.0) or 30.0
        self._index = 0
        self._unread: collections.deque[CapturedFrame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._fatal: CaptureError | None = None
        self._thread: threading.Thread | None = None
        self.state = "running"

    def _start(self) -> None:
        """Start the capture thread at the first read, not at opening: a file starts playing, and a camera's frames
        start counting as dropped, when somebody reads (models and pose estimators load in between)."""
        with self._cond:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=f"capture-{self.target}", daemon=True)
                self._thread.start()

    # -- opening -------------------------------------------------------------------------------------------------
    def _open(self) -> Any:
        cv2 = _cv2()
        if self.kind == "camera":  # a missing camera makes every backend log its failure; our error says it once
            with _opencv_log_silenced(cv2):
                cap = cv2.VideoCapture(self.target)
        else:  # a file or URL that fails: OpenCV's own lines tell which codec or protocol
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            if self.kind == "camera":
                raise CameraNotFoundError(_camera_hint(int(self.target)))
            raise CaptureError(f"could not open {self.kind} {self.target!r} with OpenCV "
                               f"(check the path/URL and that OpenCV's FFmpeg backend supports the codec)")
        if self.kind == "camera":
            props = {"width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT, "fps": cv2.CAP_PROP_FPS}
            for key, value in self._settings.items():
                if value:
                    cap.set(props[key], float(value))
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    # -- reading -------------------------------------------------------------------------------------------------
    def _read_one(self) -> CapturedFrame | None:
        t0 = time.perf_counter()
        ok, image = self._cap.read()
        while (not ok or image is None) and self.kind == "file" and self._plays_left > 1 and self._index > 0:
            self._plays_left -= 1  # the next play of a looped file: reopened, the stream goes on
            self._cap.release()
            self._cap = self._open()
            ok, image = self._cap.read()
        if not ok or image is None:
            return None
        if self.mirror:
            image = _cv2().flip(image, 1)
        capture_ms = (time.perf_counter() - t0) * 1e3
        now_ms = self._clock() * 1e3
        media_ms = self._index * 1e3 / self.fps if self.kind == "file" else now_ms
        frame = CapturedFrame(image, self._index, now_ms, media_ms, capture_ms)
        self._index += 1
        self.stats.read += 1
        return frame

    def _run(self) -> None:
        start = self._clock()
        while not self._stop.is_set():
            frame = self._read_one()
            if frame is None:
                if self.kind == "file" or not self._reconnect():
                    break
                continue
            if self.kind == "file":  # pace a file at its own rate
                wait = start + frame.index / self.fps - self._clock()
                if wait > 0 and self._stop.wait(wait):
                    break
                # the frame arrives now, as a camera's would: stamped after the wait (decoded ahead of it)
                frame.timestamp_ms = self._clock() * 1e3
            with self._cond:
                if len(self._unread) >= self.backlog:
                    self._unread.popleft()
                    self.stats.dropped += 1
                self._unread.append(frame)
                self._cond.notify_all()
        with self._cond:
            if self.state == "running":
                self.state = "ended"
            self._cond.notify_all()

    def _reconnect(self) -> bool:
        """Reopen a lost camera/stream with backoff; False when stopped or out of retries."""
        msg = f"{self.kind} {self.target!r} stopped delivering frames; reconnecting"
        logger.warning(msg)
        self._record_error(msg)
        self.state = "reconnecting"
        self._cap.release()
        attempt = 0
        while not self._stop.is_set():
            delay = self.retry_delays_s[min(attempt, len(self.retry_delays_s) - 1)]
            if self._stop.wait(delay):
                return False
            try:
                self._cap = self._open()
            except CaptureError as err:
                attempt += 1
                self._record_error(f"reconnect attempt {attempt} failed: {err}")
                if self.max_retries is not None and attempt >= self.max_retries:
                    self._fatal = CaptureError(f"{self.kind} {self.target!r} lost and not back after {attempt} "
                                               f"attempts: {err}")
                    self.state = "failed"
                    return False
                continue
            self.stats.reconnects += 1
            self.state = "running"
            logger.warning("%s %r reconnected after %d failed attempt(s)", self.kind, self.target, attempt)
            return True
        return False

    def _record_error(self, msg: str) -> None:
        self.stats.last_error = msg
        self.stats.errors = (self.stats.errors + [msg])[-20:]

    def read(self, timeout_s: float | None = None) -> CapturedFrame | None:
        """The next frame (newest unread one in realtime mode); None at the end of the stream or on timeout.

        Raises:
            CaptureError: The source was lost and could not be reopened.
        """
        if not self.realtime:
            frame = None if self._stop.is_set() else self._read_one()
            if frame is None:
                self.state = "ended"
            else:
                self.stats.delivered += 1
            return frame
        if self._thread is None:
            self._start()
        with self._cond:
            self._cond.wait_for(lambda: self._unread or self.state in ("ended", "failed") or self._stop.is_set(),
                                timeout_s)
            if self._unread:
                self.stats.delivered += 1
                return self._unread.popleft()
        if self._fatal is not None:
            raise self._fatal
        return None  # ended, closed, or timed out (then `state` is still "running")

    def __iter__(self) -> Iterator[CapturedFrame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    @property
    def frames_dropped(self) -> int:
        return self.stats.dropped

    def close(self) -> None:
        """Stop the capture thread and release the device (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._cap.release()
        if self.state not in ("ended", "failed"):
            self.state = "closed"

    def __enter__(self) -> "VideoCapture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown; nothing left to report to
            pass


_LOG_LOCK = threading.Lock()  # OpenCV's log level is process-wide: one probe at a time sets and restores it


@contextlib.contextmanager
def _opencv_log_silenced(cv2: Any) -> Iterator[None]:
    """OpenCV's log off inside the block (its video backends' WARN / ERROR lines and exception dumps)."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:  # an OpenCV build without the logging API: nothing to silence
        yield
        return
    with _LOG_LOCK:
        previous = logging_api.getLogLevel()
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
        try:
            yield
        finally:
            logging_api.setLogLevel(previous)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as err:
        raise ImportError("video capture needs OpenCV: pip install 'sttr[live]' (or pip install "
                          "opencv-python)") from err
    return cv2
