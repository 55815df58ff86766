"""The live pipeline: source → adapter → tracker → ring buffer → preprocess → engine → scores → publisher.

Threads: the caller's thread runs the frame loop (read a frame from the source, adapt it to the model's layout,
track persons into M slots, push into the ring buffer, and every ``stride`` frames copy a window into the
scheduler). The scheduler's worker thread runs preprocessing, the engine, the temperature softmax, top-k, optional
smoothing and the publish (see ``scheduler.py`` for why, and for the drop policy).

Latency stages carried in every prediction (milliseconds, ``time.perf_counter_ns``):
    capture    the source's capture time of the newest frame in the window (``frame.timings_ms['capture']``)
    pose       the source's pose estimation time of that frame (``frame.timings_ms['pose']``)
    buffer     adapter + tracker + ring-buffer push of that frame, window copy, and preprocessing of the window
    inference  engine run + calibrated softmax + smoothing + top-k
    publish    building the message (its encoding and the non-blocking send follow the stamp; they are measured in
               the run's latency summary: ``send`` = build + encode + send, wall clock; ``send_cpu`` = the same on
               this thread's CPU clock, i.e. without time spent waiting for a core or the GIL)
    total      from the start of the newest frame's capture to the stamp, including any wait for the worker
numpy only: the engine object is passed in (``realtime.engines`` imports its runtime lazily).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .latency import LatencyRecorder
from .frame_guard import FrameGuard
from .messages import prediction_payload, prediction_topic, status_payload, status_topic
from .ring_buffer import RingBuffer
from .scheduler import WindowScheduler
from .source_loop import SourceLoop

__all__ = ["LiveConfig", "ModelSpec", "Pipeline", "RunStats", "Observer", "EngineLike", "top_k", "fill_frame"]

logger = logging.getLogger(__name__)

STAGES = ("capture", "pose", "buffer", "inference", "publish", "total", "send", "send_cpu")


class EngineLike(Protocol):
    """What the pipeline needs from ``realtime.engines.Engine``."""

    def run(self, windows: np.ndarray) -> np.ndarray: ...

    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...


class Observer(Protocol):
    """Optional hooks (terminal view, overlay). ``on_frame`` runs in the frame loop, the others may not."""

    def on_frame(self, frame: Any, tracked: Any) -> None: ...

    def on_prediction(self, payload: Mapping[str, Any]) -> None: ...

    def on_status(self, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about the model (from the bundle's input spec).

    Attributes:
        channels, frames, joints, persons: C, T, V, M of the raw window (before preprocessing).
        layout: the model's skeleton layout name.
        fps: the frame rate the model was trained at (windows are resampled to it); None keeps the input rate.
        labels: class names, index order.
        name: model name carried in predictions; backend: engine backend name.
        channel_names: meaning of the C axis, e.g. ('x', 'y', 'z') or ('x', 'y', 'score').
        preprocess: (C, T, V, M) window -> model input (C', T, V, M); None feeds the raw window.
    """

    channels: int
    frames: int
    joints: int
    persons: int
    layout: str
    fps: float | None
    labels: tuple[str, ...]
    name: str = "sttr"
    backend: str = "unknown"
    channel_names: tuple[str, ...] = ("x", "y", "z")
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class LiveConfig:
    """Settings of a live run.

    Attributes:
        stream: stream id (topics ``pred.<stream>`` / ``status.<stream>``).
        stride: input frames between two windows.
        top_k: classes per prediction.
        smoothing: weight of the past in an exponential moving average of the probabilities over windows
            (0 = off; 0.5 averages roughly the last three windows).
        realtime: live policy (newest window wins, old ones dropped); False waits for the engine (no window lost).
        threaded: inference in a worker thread (True) or inline in the frame loop.
        max_frames: stop after this many frames (None: until the source ends).
        status_period_s: seconds between status messages.
        interpolation: ring-buffer resampling, 'linear' or 'nearest'.
        max_gap_ms: no interpolation across longer gaps between frames.
        skip_empty: publish nothing for windows whose newest frame has no tracked person.
        index_fps: when set, a frame's time is ``index * 1000 / index_fps`` instead of its ``timestamp_ms``
            (files read faster than real time, whose capture times say nothing about the motion's pace).
        skip_bad_frames: a frame the adapter, tracker or model cannot take (unknown layout, wrong joint count or
            dimensions) is counted in ``bad_frames`` and skipped instead of ending the run: for inputs from other
            programs (``--skeleton-sub``), as ``sttr serve`` does. Off for our own sources, whose layout mismatch
            is the same on every frame and best reported once, at the first.
    """

    stream: str = "live"
    stride: int = 8
    top_k: int = 5
    smoothing: float = 0.0
    realtime: bool = True
    threaded: bool = True
    max_frames: int | None = None
    status_period_s: float = 1.0
    interpolation: str = "linear"
    max_gap_ms: float = 250.0
    skip_empty: bool = True
    index_fps: float | None = None
    skip_bad_frames: bool = False

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1 frame, got {self.stride}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")


@dataclass
class RunStats:
    """What a run did (returned by ``Pipeline.run``)."""

    frames: int = 0
    frames_dropped: int = 0
    windows: int = 0
    windows_dropped: int = 0
    predictions: int = 0
    publish_dropped: int = 0
    errors: int = 0
    bad_frames: int = 0  # skipped: the model could not take them (``skip_bad_frames``)
    invalid_joints_frames: int = 0  # had non-finite or absurd joints, taken as not detected (``FrameGuard``)
    wall_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def input_fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class _WindowMeta:
    first_frame: int
    last_frame: int
    t_first_ms: float
    t_last_ms: float
    persons: list[int]
    capture_ms: float
    pose_ms: float
    buffer_ms: float
    start_ns: int  # perf_counter_ns at the start of the newest frame's capture


def _source_errors(source: Any) -> list[str]:
    """The recent error messages a source keeps (``errors``, or its capture's ``stats.errors``), if any."""
    found: list[str] = []
    for holder in (source, getattr(source, "source", None), getattr(source, "capture", None)):
        for errors in (getattr(holder, "errors", None), getattr(getattr(holder, "stats", None), "errors", None)):
            if isinstance(errors, list):
                found.extend(str(e) for e in errors[-20:])
    return found


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(class index, probability) of the k most probable classes, best first."""
    k = min(k, probs.shape[0])
    idx = np.argpartition(-probs, k - 1)[:k]
    idx = idx[np.argsort(-probs[idx], kind="stable")]
    return [(int(i), float(probs[i])) for i in idx]


def fill_frame(tracked: Any, spec: ModelSpec, out: np.ndarray) -> list[int]:
    """Write a tracked frame (model layout, persons in slots) into the (M, V, C) array ``out``; returns the track ids
    present (slots with a detected joint). Shared by the pipeline and the multi-stream service."""
    out.fill(0.0)
    joints, scores = tracked.joints, tracked.scores
    persons = min(joints.shape[0], spec.persons)
    if persons and joints.shape[1] != spec.joints:
        raise ValueError(f"frame in layout {getattr(tracked, 'layout', '?')!r} has {joints.shape[1]} joints, "
                         f"the model ({spec.layout}) expects {spec.joints}; give an adapter")
    dim = 0
    for c, name in enumerate(spec.channel_names):
        if name in ("score", "confidence", "visibility"):
            out[:persons, :, c] = scores[:persons]
        elif dim < joints.shape[2]:
            out[:persons, :, c] = joints[:persons, :, dim]
            dim += 1
    present = scores[:persons].max(axis=1) > 0 if persons else np.zeros(0, bool)
    ids = tracked.track_ids or list(range(persons))
    return [int(ids[p]) for p in range(persons) if present[p] and ids[p] >= 0]


class Pipeline(SourceLoop):
    """Run a skeleton source through a model and publish predictions.

    Args:
        source: iterable of ``SkeletonFrame`` (closing it is the caller's job).
        engine: ``run`` and ``probabilities`` as ``realtime.engines.Engine``.
        spec: the model's input (see ModelSpec).
        config: LiveConfig.
        publisher: a ``Publisher`` (or anything with ``send(topic, payload) -> bool``); None publishes nothing.
        adapter: callable SkeletonFrame -> SkeletonFrame in the model's layout (``Adapter.frame``); None when the
            source already delivers the model's layout.
        tracker: object with ``update(frame) -> frame`` giving M persons in stable slots (``PersonTracker``);
            None keeps the first M persons in source order.
        observers: hooks called on frames, predictions and status messages.
    """

    def __init__(self, source: Iterable[Any], engine: EngineLike, spec: ModelSpec, config: LiveConfig | None = None,
                 publisher: Any = None, adapter: Callable[[Any], Any] | None = None, tracker: Any = None,
                 observers: Sequence[Observer] = ()) -> None:
        self.source, self.engine, self.spec = source, engine, spec
        self.config = config or LiveConfig()
        self.publisher, self.adapter, self.tracker = publisher, adapter, tracker
        self.observers = list(observers)
        self._check_spec()
        self.guard = FrameGuard(f"stream {self.config.stream!r}")
        capacity = max(4 * spec.frames, spec.frames + 4 * self.config.stride)
        self.ring = RingBuffer(capacity, spec.persons, spec.joints, spec.channels, max_gap_ms=self.config.max_gap_ms)
        self._frame_buf = np.zeros((spec.persons, spec.joints, spec.channels), np.float32)
        self.scheduler = WindowScheduler((spec.channels, spec.frames, spec.joints, spec.persons), self._infer,
                                         stride=self.config.stride,
                                         mode="latest" if self.config.realtime else "block",
                                         threaded=self.config.threaded, on_idle=self._maybe_status,
                                         idle_period_s=max(0.02, min(0.25, self.config.status_period_s)))
        super().__init__()
        self.latency = LatencyRecorder(STAGES)
        self.stats = RunStats()
        self._seq = 0
        self._start_ns = 0
        self._ema: np.ndarray | None = None
        self._last_index: int | None = None
        self._status_lock = threading.Lock()
        self._status_t = time.perf_counter()
        self._status_frames = 0
        self._persons_period: set[int] = set()
        self._errors: deque[str] = deque(maxlen=5)
        self._errors_reported = 0
        self._source_errors_seen: deque[str] = deque(maxlen=100)
        self.on_publish: Callable[[int, int], None] | None = None  # (seq, start_ns) after each send (benches)

    def _check_spec(self) -> None:
        s = self.spec
        if len(s.channel_names) != s.channels:
            raise ValueError(f"model spec: {s.channels} channels but channel names {s.channel_names}")
        if not s.labels:
            raise ValueError("model spec: expected at least one class label")

    # ------------------------------------------------------------------ control
    def run(self) -> RunStats:
        """Process frames until the source ends, ``max_frames`` is reached or ``stop()``; returns RunStats."""
        t0 = time.perf_counter()
        self.scheduler.start()
        try:
            for frame in self.frames(self.source):
                self.on_frame(frame)
                if self.config.max_frames and self.stats.frames >= self.config.max_frames:
                    break
        finally:
            self.scheduler.close(drain=not self._stop.is_set() or not self.config.realtime)
            self.stats.wall_s = time.perf_counter() - t0
            self._maybe_status(force=True)
            self._finish_stats()
        return self.stats

    def _finish_stats(self) -> None:
        st = self.stats
        st.windows, st.windows_dropped = self.scheduler.submitted, self.scheduler.dropped
        st.frames_dropped = self._frames_dropped()
        st.errors += self.scheduler.errors
        st.publish_dropped = int(getattr(self.publisher, "dropped", 0) or 0)
        st.invalid_joints_frames = self.guard.frames_fixed
        st.latency_ms = self.latency.summary()

    # ------------------------------------------------------------------ frame loop
    def on_frame(self, frame: Any) -> None:
        """Take one SkeletonFrame (normally called by ``run``)."""
        start_ns = time.perf_counter_ns()
        self.stats.frames += 1
        self._count_drops(frame.index)
        if self.config.index_fps:  # one time base for tracker and buffer: media time from the frame index
            frame = replace(frame, timestamp_ms=frame.index * 1000.0 / self.config.index_fps)
        frame = self.guard(frame)
        try:
            tracked, ids = self._to_model(frame)
        except (ValueError, KeyError) as exc:  # unknown layout, joints that do not fit the model
            if not self.config.skip_bad_frames:
                raise
            self._bad_frame(frame, exc)
            return
        t_ms = float(frame.timestamp_ms)
        try:
            self.ring.push(self._frame_buf, t_ms, int(frame.index))
        except ValueError as exc:  # time went backwards (a looping file, a restarted source): start over
            self._record_error(f"frame {frame.index}: {exc}; buffer restarted")
            self.ring.clear()
            self._ema = None
            if hasattr(self.tracker, "reset"):
                self.tracker.reset()
            self.ring.push(self._frame_buf, t_ms, int(frame.index))
        push_ms = (time.perf_counter_ns() - start_ns) / 1e6
        self._persons_period.update(ids)
        for observer in self.observers:
            observer.on_frame(frame, tracked)
        if self.scheduler.frame_arrived() and self.ring.ready(self.spec.frames, self.spec.fps):
            if ids or not self.config.skip_empty:
                self._submit_window(frame, ids, start_ns, push_ms)
        self._maybe_status()

    def _to_model(self, frame: Any) -> tuple[Any, list[int]]:
        model_frame = self.adapter(frame) if self.adapter is not None else frame
        tracked = self.tracker.update(model_frame) if self.tracker is not None else model_frame
        return tracked, fill_frame(tracked, self.spec, self._frame_buf)

    def _bad_frame(self, frame: Any, exc: BaseException) -> None:
        self.stats.bad_frames += 1
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)  # KeyError's str quotes it
        text = f"frame {frame.index} skipped: {str(detail).splitlines()[0] if detail else repr(exc)}"
        self.stats.errors += 1
        self._errors.append(text[:200])
        n = self.stats.bad_frames
        if n == 1 or n % 100 == 0:  # a sender that is wrong every frame must not flood the terminal
            logger.warning("%s (%d bad frame(s) so far)", text, n)

    def _count_drops(self, index: int) -> None:
        if self._last_index is not None and index > self._last_index + 1:
            self.stats.frames_dropped += index - self._last_index - 1
        self._last_index = index

    def _submit_window(self, frame: Any, ids: list[int], start_ns: int, push_ms: float) -> None:
        buf = self.scheduler.acquire()  # in block mode this waits for the engine: not counted as buffer time
        t0 = time.perf_counter_ns()
        self.ring.window(self.spec.frames, self.spec.fps, out=buf, interpolation=self.config.interpolation)
        first, last, t_first, t_last = self.ring.window_frames(self.spec.frames, self.spec.fps)
        timings = getattr(frame, "timings_ms", None) or {}
        capture_ms, pose_ms = float(timings.get("capture", 0.0)), float(timings.get("pose", 0.0))
        meta = _WindowMeta(first, last, t_first, t_last, ids, capture_ms, pose_ms,
                           push_ms + (time.perf_counter_ns() - t0) / 1e6,
                           start_ns - int((capture_ms + pose_ms) * 1e6))
        self.scheduler.submit(buf, meta)

    # ------------------------------------------------------------------ worker
    def _infer(self, window: np.ndarray, meta: _WindowMeta) -> None:
        t0 = time.perf_counter_ns()
        x = self.spec.preprocess(window) if self.spec.preprocess is not None else window
        x = np.ascontiguousarray(x[None], dtype=np.float32)  # (1, C, T, V, M)
        t1 = time.perf_counter_ns()
        probs = np.asarray(self.engine.probabilities(self.engine.run(x)), dtype=np.float64)[0]
        if not np.isfinite(probs).all():  # never publish NaN scores; a smoothed average must not keep them either
            self._record_error(f"window ending at frame {meta.last_frame}: the model gave non-finite scores; "
                               "no prediction")
            return
        if self.config.smoothing > 0:
            a = self.config.smoothing
            self._ema = probs if self._ema is None else a * self._ema + (1.0 - a) * probs
            probs = self._ema
        best = top_k(probs, self.config.top_k)
        t2, cpu2 = time.perf_counter_ns(), time.thread_time_ns()
        payload = self._payload(meta, best, (t1 - t0) / 1e6, (t2 - t1) / 1e6, t2)
        self._publish(payload, t2, cpu2)

    def _payload(self, meta: _WindowMeta, best: list[tuple[int, float]], prep_ms: float, infer_ms: float,
                 t_infer_end: int) -> dict[str, Any]:
        labels = self.spec.labels
        latency = {"capture": meta.capture_ms, "pose": meta.pose_ms, "buffer": meta.buffer_ms + prep_ms,
                   "inference": infer_ms}
        window = {"first_frame": meta.first_frame, "last_frame": meta.last_frame, "frames": self.spec.frames,
                  "fps": self.spec.fps or self._input_fps_estimate(), "t_first_ms": meta.t_first_ms,
                  "t_last_ms": meta.t_last_ms}
        topk = [(labels[i] if i < len(labels) else str(i), i, p) for i, p in best]
        now = time.perf_counter_ns()
        latency["publish"] = (now - t_infer_end) / 1e6
        latency["total"] = (now - meta.start_ns) / 1e6
        self._start_ns = meta.start_ns
        payload = prediction_payload(stream=self.config.stream, seq=self._seq, window=window, persons=meta.persons,
                                     topk=topk, model=self.spec.name, backend=self.spec.backend, latency_ms=latency)
        self._seq += 1
        return payload

    def _publish(self, payload: dict[str, Any], t_infer_end: int, cpu_infer_end: int) -> None:
        if self.publisher is not None:
            self.publisher.send(prediction_topic(self.config.stream), payload)
        done, cpu_done = time.perf_counter_ns(), time.thread_time_ns()
        if self.on_publish is not None:
            self.on_publish(payload["seq"], self._start_ns)
        self.stats.predictions += 1
        self.latency.record_many(payload["latency_ms"])
        self.latency.record("send", (done - t_infer_end) / 1e6)
        self.latency.record("send_cpu", (cpu_done - cpu_infer_end) / 1e6)
        for observer in self.observers:
            observer.on_prediction(payload)

    def _input_fps_estimate(self) -> float:
        span = self.ring.span_ms()
        return (len(self.ring) - 1) * 1000.0 / span if span > 0 else 1.0

    # ------------------------------------------------------------------ status
    def _record_error(self, text: str) -> None:
        logger.warning("%s", text)
        self.stats.errors += 1
        self._errors.append(text[:200])

    def _maybe_status(self, force: bool = False) -> None:
        """Send a status message when ``status_period_s`` has passed (from either thread)."""
        with self._status_lock:
            now = time.perf_counter()
            elapsed = now - self._status_t
            if not force and elapsed < self.config.status_period_s:
                return
            frames = self.stats.frames
            fps = (frames - self._status_frames) / elapsed if elapsed > 0 else 0.0
            if self.scheduler.errors > self._errors_reported:
                self._errors.append(f"inference: {self.scheduler.last_error!r}"[:200])
                self._errors_reported = self.scheduler.errors
            for text in _source_errors(self.source):
                if text not in self._source_errors_seen:
                    self._source_errors_seen.append(text)
                    self._errors.append(f"source: {text}"[:200])
            payload = status_payload(stream=self.config.stream, input_fps=fps,
                                     frames_dropped=self._frames_dropped(),
                                     persons_seen=len(self._persons_period), queue_depth=self.scheduler.queue_depth,
                                     backend=self.spec.backend, errors=list(self._errors))
            self._errors.clear()
            self._persons_period = set()
            self._status_t, self._status_frames = now, frames
        if self.publisher is not None:
            self.publisher.send(status_topic(self.config.stream), payload)
        for observer in self.observers:
            observer.on_status(payload)

    def _frames_dropped(self) -> int:
        """Frames lost before the pipeline: gaps in the frame indices, or the source's own count when larger
        (sources expose ``frames_dropped``; a capture's newest-wins drops show up as index gaps too)."""
        value = getattr(self.source, "frames_dropped", 0)
        reported = int(value) if isinstance(value, (int, np.integer)) else 0
        return max(self.stats.frames_dropped, reported)
