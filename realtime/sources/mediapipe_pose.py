"""MediaPipe PoseLandmarker (Tasks API) as a skeleton source: images in, `mediapipe33` SkeletonFrames out.

Two running modes, as MediaPipe defines them:

* `video` (default): `detect_for_video`, synchronous, one result per image, every image processed.
* `live_stream`: `detect_async`; results arrive on MediaPipe's thread and are yielded as they come. MediaPipe
  may drop images to keep latency low (counted in `stats["pose_dropped"]`).

Both need strictly increasing integer `timestamp_ms`: a file's frames use their media time (index / fps), live
frames their capture time, bumped by 1 ms when two would collide.

Coordinates (`coordinates=`): `world` gives (P, 33, 3) world landmarks in metres, origin between the hips,
x image-right, y down, z away from the camera; `image` gives (P, 33, 2) image landmarks normalised to [0, 1]
(x / width, y / height). Scores are the landmarks' visibility. `realtime.adapters` maps them to model layouts.

Parallel estimators (`workers`, video mode): MediaPipe runs one image at a time on one core (~32 ms for the two-person
test video on this project's 2-core CPU: 30 fps is out of reach for one landmarker). With `workers=N`, N landmarkers
share the frames, each in its own thread (MediaPipe's C calls release the GIL), and results are yielded in frame
order (`InOrderPool`); throughput scales with cores (27 -> 46 fps with 2 on 2 cores) while a frame's own latency stays
one estimate. From a newest-wins capture each frame goes to whichever landmarker is free (a slow frame on one does
not hold up the other); from a file read frame by frame, frame k goes to landmarker k mod N (repeatable results).
Each landmarker tracks the frames it gets (about every N-th one); on the test video the person counts match one
landmarker's (1.53 vs 1.55 a frame) and the landmarks jitter no more.

Person ids: world landmarks are centred on each person's own hips, so they cannot tell two people apart. With
`track=True` (default) the source matches persons across frames on their *image* positions (`PersonTracker`) and
yields them ordered by slot with `track_ids` set; a downstream `PersonTracker` keeps those ids in their slots.
mediapipe is imported when a source or estimator is opened.
"""
from __future__ import annotations

import logging
import os
import queue
import time
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from ..frame import SkeletonFrame
from ..tracker import PersonTracker
from .capture import DEFAULT_BACKLOG, CapturedFrame, VideoCapture
from .in_order_pool import InOrderPool
from .native_log_filter import native_stderr_filtered
from .pose_model import resolve_pose_model

__all__ = ["PoseEstimator", "MediaPipePoseSource", "landmarks_to_arrays", "DEFAULT_POSE_WIDTH",
           "default_pose_workers"]

logger = logging.getLogger(__name__)

LAYOUT = "mediapipe33"
NUM_LANDMARKS = 33
DEFAULT_POSE_WIDTH = 0  # pixels, 0 = full resolution; see PoseEstimator


def default_pose_workers() -> int:
    """Landmarkers for video mode when none is asked for: two where there are two cores (30 fps on two cores needs
    both), else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


Coordinates = Literal["world", "image"]
Mode = Literal["video", "live_stream"]


def _mediapipe() -> Any:
    try:
        import mediapipe
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except ImportError as err:
        raise ImportError("the MediaPipe pose source needs mediapipe: pip install 'sttr[live]' "
                          "(or pip install mediapipe)") from err
    return mediapipe, vision, BaseOptions


def landmarks_to_arrays(result: Any, coordinates: Coordinates) -> tuple[np.ndarray, np.ndarray]:
    """A PoseLandmarkerResult as float32 (P, 33, D) joints and (P, 33) visibility scores."""
    people = result.pose_world_landmarks if coordinates == "world" else result.pose_landmarks
    dims = 3 if coordinates == "world" else 2
    joints = np.zeros((len(people), NUM_LANDMARKS, dims), np.float32)
    scores = np.zeros((len(people), NUM_LANDMARKS), np.float32)
    for p, (person, image_person) in enumerate(zip(people, result.pose_landmarks)):
        joints[p] = [(lm.x, lm.y, lm.z)[:dims] for lm in person]
        scores[p] = [lm.visibility if lm.visibility is not None else 1.0 for lm in image_person]
    return joints, np.clip(scores, 0.0, 1.0)


class PoseEstimator:
    """A PoseLandmarker with the options we use; `detect` for video mode, `detect_async` for live mode.

    Args:
        model_path: The `.task` file; None resolves the cached/downloaded one (`pose_model.resolve_pose_model`).
        mode: 'video' or 'live_stream'.
        num_poses: Most persons per image (M).
        min_detection_confidence, min_presence_confidence, min_tracking_confidence: MediaPipe thresholds.
        result_callback: live_stream only: called as (result, timestamp_ms) on MediaPipe's thread.
        max_width: Wider images are scaled down to this width (aspect kept) before MediaPipe sees them; None or 0
            (default) keeps full resolution. For large camera images: at 640 px the normalised landmarks move by
            0.3 % of the image on the two-person test video, but a small, distant person is found less often
            (1.30 instead of 1.39 persons a frame), so full resolution is the default.
    """

    def __init__(self, model_path: str | Path | None = None, *, mode: Mode = "video", num_poses: int = 2,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, result_callback: Any = None,
                 max_width: int | None = DEFAULT_POSE_WIDTH) -> None:
        if max_width is not None and max_width < 0:
            raise ValueError(f"max_width must be a positive number of pixels (0 or None: full size), got {max_width}")
        self.max_width = int(max_width) if max_width else None
        if mode not in ("video", "live_stream"):
            raise ValueError(f"mode must be 'video' or 'live_stream', got {mode!r}")
        if num_poses < 1:
            raise ValueError(f"num_poses must be >= 1, got {num_poses}")
        if mode == "live_stream" and result_callback is None:
            raise ValueError("live_stream mode needs a result_callback")
        self._mp, vision, base_options = _mediapipe()
        self.model_path = resolve_pose_model(model_path)
        self.mode = mode
        running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.LIVE_STREAM
        callback = None
        if result_callback is not None:
            callback = lambda result, image, ts: result_callback(result, ts)  # noqa: E731
        options = vision.PoseLandmarkerOptions(
            base_options=base_options(model_asset_path=str(self.model_path)), running_mode=running,
            num_poses=num_poses, min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence, min_tracking_confidence=min_tracking_confidence,
            result_callback=callback)
        self._last_ts = -1
        with native_stderr_filtered():  # ~90 lines of LiteRT start-up chatter per landmarker
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
            if mode == "video":  # the first inference logs 2 more lines: run it here, on an empty image
                self._landmarker.detect_for_video(self._mp.Image(
                    image_format=self._mp.ImageFormat.SRGB, data=np.zeros((32, 32, 3), np.uint8)), self._timestamp(0))

    def _timestamp(self, timestamp_ms: float) -> int:
        ts = max(int(round(timestamp_ms)), self._last_ts + 1)
        self._last_ts = ts
        return ts

    def _image(self, image_bgr: np.ndarray) -> Any:
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image (H, W, 3), got {image_bgr.dtype} {image_bgr.shape}")
        import cv2

        h, w = image_bgr.shape[:2]
        if self.max_width and w > self.max_width:  # normalised landmarks do not change with a uniform scale
            size = (self.max_width, max(1, round(h * self.max_width / w)))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        # cv2 rather than a numpy channel flip + copy: on a 1768x994 frame that copy alone cost a third of the
        # pose time (23 -> 31 fps for the two-person video on one core)
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        return self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)

    def detect(self, image_bgr: np.ndarray, timestamp_ms: float) -> tuple[Any, int]:
        """Video mode: the landmarker result for one image, and the timestamp it was given."""
        if self.mode != "video":
            raise RuntimeError("detect() is for video mode; use detect_async() in live_stream mode")
        ts = self._timestamp(timestamp_ms)
        return self._landmarker.detect_for_video(self._image(image_bgr), ts), ts

    def detect_async(self, image_bgr: np.ndarray, timestamp_ms: float) -> int:
        """Live mode: queue one image; the result arrives on the callback. Returns the timestamp used."""
        if self.mode != "live_stream":
            raise RuntimeError("detect_async() is for live_stream mode; use detect() in video mode")
        ts = self._timestamp(timestamp_ms)
        self._landmarker.detect_async(self._image(image_bgr), ts)
        return ts

    def close(self) -> None:
        if getattr(self, "_landmarker", None) is not None:
            with native_stderr_filtered():
                self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MediaPipePoseSource:
    """Skeletons from a camera, video file or stream, estimated by MediaPipe.

    Args:
        capture: An open `VideoCapture`, or what `VideoCapture` accepts (camera index, file, URL).
        model_path: Pose model file (`--pose-model`); None uses the cache / one-time download.
        mode: 'video' (synchronous, every captured image) or 'live_stream' (asynchronous, may drop).
        num_poses: Most persons per frame.
        coordinates: 'world' (metres, D = 3) or 'image' (normalised, D = 2).
        keep_image: Attach the BGR image to each frame (for drawing); False saves memory.
        realtime: For a capture built here: the newest frames win (True; see `capture_backlog`) or every frame of a
            file (False).
        mirror: For a capture built here: flip images left-right (mirrored footage such as NTU RGB+D videos).
        loops: For a capture built here from a file: play it this many times as one stream (benchmarks).
        capture_backlog: For a capture built here, realtime: frames it keeps unread before dropping the oldest
            (`capture.DEFAULT_BACKLOG`; 1 = strictly newest frame wins).
        track: Give persons stable `track_ids` by matching image positions across frames.
        track_timeout_ms: How long a person may be missing before their id is retired.
        max_width: Images wider than this are scaled down before pose estimation (see `PoseEstimator`).
        workers: Landmarkers sharing the frames (video mode; see the module notes); None: `default_pose_workers()`.
            live_stream mode always uses one (MediaPipe drops images there itself).
        **thresholds: `min_detection_confidence`, `min_presence_confidence`, `min_tracking_confidence`.

    Yields SkeletonFrames in layout `mediapipe33` with `timings_ms` {'capture', 'pose'}; a frame without a person
    has P = 0. `stats` counts frames in, frames out and images MediaPipe dropped.
    """

    def __init__(self, capture: VideoCapture | int | str | Path, *, model_path: str | Path | None = None,
                 mode: Mode = "video", num_poses: int = 2, coordinates: Coordinates = "world",
                 keep_image: bool = True, realtime: bool = True, mirror: bool = False, loops: int = 1,
                 track: bool = True, track_timeout_ms: float = 1000.0, live_timeout_s: float = 2.0,
                 max_width: int | None = DEFAULT_POSE_WIDTH, workers: int | None = None,
                 capture_backlog: int = DEFAULT_BACKLOG, **thresholds: float) -> None:
        workers = default_pose_workers() if workers is None else int(workers)
        if workers < 1:
            raise ValueError(f"pose workers must be >= 1, got {workers}")
        if mode == "live_stream":
            workers = 1
        if coordinates not in ("world", "image"):
            raise ValueError(f"coordinates must be 'world' or 'image', got {coordinates!r}")
        self.coordinates = coordinates
        self.keep_image = keep_image
        self.live_timeout_s = live_timeout_s
        self.tracker = PersonTracker(max_persons=num_poses, timeout_ms=track_timeout_ms) if track else None
        self.stats = {"frames_in": 0, "frames_out": 0, "pose_dropped": 0, "pose_workers": workers}
        self._results: queue.Queue[tuple[Any, int]] = queue.Queue()
        self._owns_capture = not isinstance(capture, VideoCapture)
        self.capture = VideoCapture(capture, realtime=realtime, mirror=mirror, loops=loops,
                                    backlog=capture_backlog) \
            if self._owns_capture else capture
        self.estimators: list[PoseEstimator] = []
        try:
            callback = (lambda result, ts: self._results.put((result, ts))) if mode == "live_stream" else None
            for _ in range(workers):
                self.estimators.append(PoseEstimator(model_path, mode=mode, num_poses=num_poses,
                                                     result_callback=callback, max_width=max_width, **thresholds))
        except BaseException:
            for estimator in self.estimators:
                estimator.close()
            if self._owns_capture:
                self.capture.close()
            raise
        self.estimator = self.estimators[0]
        self._pool: InOrderPool | None = None  # several landmarkers: made when iteration starts

    def _frame(self, result: Any, captured: CapturedFrame, pose_ms: float) -> SkeletonFrame:
        joints, scores = landmarks_to_arrays(result, self.coordinates)
        track_ids = None
        # world landmarks are metres around the hips: drawing and tracking need the image landmarks too
        image_joints = None if self.coordinates == "image" or (self.tracker is None and not self.keep_image) \
            else landmarks_to_arrays(result, "image")[0]
        if self.tracker is not None:
            tracked = self.tracker.update(SkeletonFrame(LAYOUT, captured.timestamp_ms, captured.index,
                                                        joints if image_joints is None else image_joints, scores))
            slots = sorted(self.tracker.last_assignment)
            order = [self.tracker.last_assignment[s] for s in slots]
            joints, scores = joints[order], scores[order]
            image_joints = None if image_joints is None else image_joints[order]
            track_ids = [tracked.track_ids[s] for s in slots]
        self.stats["frames_out"] += 1
        return SkeletonFrame(layout=LAYOUT, timestamp_ms=captured.timestamp_ms, index=captured.index,
                             joints=joints, scores=scores, track_ids=track_ids,
                             image=captured.image if self.keep_image else None,
                             image_joints=image_joints if self.keep_image else None,
                             timings_ms={"capture": captured.capture_ms, "pose": pose_ms})

    def _media_time(self, captured: CapturedFrame) -> float:
        return captured.media_ms if self.capture.kind == "file" else captured.timestamp_ms

    def __iter__(self) -> Iterator[SkeletonFrame]:
        if self.estimator.mode == "video":
            yield from self._iter_video()
        else:
            yield from self._iter_live()

    def _iter_video(self) -> Iterator[SkeletonFrame]:
        if len(self.estimators) == 1:
            for captured in self.capture:
                self.stats["frames_in"] += 1
                result, pose_ms = self._timed_detect(self.estimator, captured.image, self._media_time(captured))
                yield self._frame(result, captured, pose_ms)
            return
        yield from self._iter_parallel()

    def _iter_parallel(self) -> Iterator[SkeletonFrame]:
        """Video mode with several landmarkers (`InOrderPool`): the newest frame goes to whichever landmarker is
        free, results come out in frame order. With a realtime capture, what cannot be estimated in time is
        dropped there (beyond its small backlog), never queued here."""
        def detect(estimator: PoseEstimator, captured: CapturedFrame) -> tuple[Any, float]:
            return self._timed_detect(estimator, captured.image, self._media_time(captured))

        def counted(frames: Iterator[CapturedFrame]) -> Iterator[CapturedFrame]:
            for captured in frames:
                self.stats["frames_in"] += 1
                yield captured

        self._pool = InOrderPool(self.estimators, detect, in_turn=not self.capture.realtime, name="pose")
        results = self._pool.run(counted(iter(self.capture)))
        try:
            for captured, (result, pose_ms) in results:
                yield self._frame(result, captured, pose_ms)
        finally:
            results.close()  # stops the feeder when our consumer stops early

    @staticmethod
    def _timed_detect(estimator: PoseEstimator, image: np.ndarray, media_ms: float) -> tuple[Any, float]:
        t0 = time.perf_counter()
        result, _ = estimator.detect(image, media_ms)
        return result, (time.perf_counter() - t0) * 1e3

    def _iter_live(self) -> Iterator[SkeletonFrame]:
        pending: dict[int, tuple[CapturedFrame, float]] = {}  # timestamp -> (frame, send time)
        for captured in self.capture:
            self.stats["frames_in"] += 1
            ts = self.estimator.detect_async(captured.image, self._media_time(captured))
            pending[ts] = (captured, time.perf_counter())
            yield from self._drain(pending, block=False)
        deadline = time.perf_counter() + self.live_timeout_s
        while pending and time.perf_counter() < deadline:
            yield from self._drain(pending, block=True, timeout_s=max(0.0, deadline - time.perf_counter()))
        self.stats["pose_dropped"] += len(pending)

    def _drain(self, pending: dict[int, tuple[CapturedFrame, float]], block: bool,
               timeout_s: float = 0.0) -> Iterator[SkeletonFrame]:
        while True:
            try:
                result, ts = self._results.get(block=block, timeout=timeout_s if block else None)
            except queue.Empty:
                return
            block = False
            for older in [t for t in pending if t < ts]:  # MediaPipe skipped these images
                del pending[older]
                self.stats["pose_dropped"] += 1
            if ts in pending:
                captured, sent = pending.pop(ts)
                yield self._frame(result, captured, (time.perf_counter() - sent) * 1e3)

    @property
    def fps(self) -> float:
        """The capture's frame rate (a file's own rate; what a camera reports)."""
        return self.capture.fps

    @property
    def frames_dropped(self) -> int:
        """Images the capture dropped (newest wins) plus images MediaPipe dropped (live_stream mode)."""
        return self.capture.stats.dropped + self.stats["pose_dropped"]

    def close(self) -> None:
        """Release MediaPipe and, when it was opened here, the capture."""
        if self._pool is not None:  # waits for a landmarker that is still running
            self._pool.close()
        for estimator in self.estimators:
            estimator.close()
        if self._owns_capture:
            self.capture.close()
        if self._pool is not None and self._pool.feeder is not None and self._owns_capture:
            self._pool.feeder.join(timeout=5.0)  # the closed capture ends the feeder's iteration

    def __enter__(self) -> "MediaPipePoseSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
