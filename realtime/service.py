"""The multi-stream inference service: many skeleton streams in, their due windows batched into one engine call,
one prediction per stream out.

Threads:
    receiver (the caller's thread, ``run``): takes ``(stream, SkeletonFrame)`` pairs from the source (normally a
        ``ZmqSkeletonSource`` connected to every pose process) and keeps each stream's own state: layout adapter,
        tracker, ring buffer, stride counter, sequence numbers. Every ``stride`` frames of a stream it copies that
        stream's window into the stream's pending slot. It also sends ``status.<stream>`` about once a second and
        drops the state of a stream silent for ``stream_timeout_s``.
    batcher (worker thread): takes up to ``max_batch`` pending windows (the longest-waiting first), preprocesses
        them into one preallocated (N, C, T, V, M) array, makes ONE engine call, and publishes ``pred.<stream>``
        for each window with that stream's own sequence number and latency breakdown.

Policy under load: a stream has one pending slot; a newer window replaces one the batcher has not taken yet
(counted in that stream's ``windows_dropped``), so the newest window wins, latency cannot grow, and memory is
three windows per stream (filling, pending, running). The number of streams is capped (``max_streams``).

Batching is opportunistic: while the engine runs, other streams' windows pile up and go together in the next call.
``batch_wait_ms`` (default 0: no added latency) lets the batcher wait that long after the first pending window for
more; it stops waiting early once every live stream has a window pending, since nothing else could join.

Latency stages (ms) in each prediction: ``capture`` and ``pose`` are 0 here (they happened in the pose process,
and ``sttr.skeleton/1`` does not carry them); ``buffer`` = adapter + tracker + push of the window's newest frame,
window copy and preprocessing; ``inference`` = the batch's engine call + softmax + top-k (shared by the batch);
``publish`` = building the message; ``total`` = from the newest frame's arrival (decoded) to the stamp, including
the wait for the batcher.

numpy only: the engine object is passed in.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .frame_guard import FrameGuard
from .latency import LatencyRecorder
from .messages import (MessageError, check_stream_id, prediction_payload, prediction_topic, status_payload,
                       status_topic)
from .pipeline import EngineLike, ModelSpec, fill_frame, top_k
from .ring_buffer import RingBuffer
from .session import LayoutAdapter
from .source_loop import SourceLoop
from .tracker import PersonTracker

__all__ = ["ServiceConfig", "ServiceStats", "InferenceService", "FrameSource"]

logger = logging.getLogger(__name__)

STAGES = ("capture", "pose", "buffer", "inference", "publish", "total")


class FrameSource(Protocol):
    """What the service reads: ``ZmqSkeletonSource.recv`` (None after ``timeout_s`` without a frame)."""

    def recv(self, timeout_s: float | None = None) -> tuple[str, Any] | None: ...


@dataclass
class ServiceConfig:
    """Settings of the inference service.

    Attributes:
        stride: frames of a stream between two of its windows.
        top_k: classes per prediction.
        smoothing: per-stream EMA weight of past windows' probabilities (0 = off).
        max_batch: windows per engine call at most.
        batch_wait_ms: how long the batcher may wait after the first pending window for more (0: never waits).
        status_period_s: seconds between two status messages of a stream.
        stream_timeout_s: a stream without a frame for this long is reported and its state dropped.
        max_streams: streams kept at once; frames of further streams are refused (and counted).
        poll_s: longest the receiver blocks on the source (bounds status, expiry and stop reaction times).
        interpolation: ring-buffer resampling, 'linear' or 'nearest'.
        max_gap_ms: no interpolation across longer gaps between frames.
        skip_empty: no window for a stream whose newest frame has no tracked person.
    """

    stride: int = 8
    top_k: int = 5
    smoothing: float = 0.0
    max_batch: int = 8
    batch_wait_ms: float = 0.0
    status_period_s: float = 1.0
    stream_timeout_s: float = 5.0
    max_streams: int = 64
    poll_s: float = 0.05
    interpolation: str = "linear"
    max_gap_ms: float = 250.0
    skip_empty: bool = True

    def __post_init__(self) -> None:
        for name in ("stride", "top_k", "max_batch", "max_streams"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"service {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"service smoothing must be in [0, 1), got {self.smoothing}")
        for name in ("batch_wait_ms", "status_period_s", "stream_timeout_s", "poll_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"service {name} must be >= 0, got {getattr(self, name)}")


@dataclass
class ServiceStats:
    """What a service run did (``InferenceService.run`` returns it; live counters while it runs)."""

    frames: int = 0
    bad_messages: int = 0
    streams_seen: int = 0
    streams_dropped: int = 0
    streams_refused: int = 0
    windows: int = 0
    windows_dropped: int = 0
    predictions: int = 0
    batches: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # batch size -> engine calls of that size
    errors: int = 0
    invalid_joints_frames: int = 0  # had non-finite or absurd joints, taken as not detected (``FrameGuard``)
    wall_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        return self.windows_run / self.batches if self.batches else 0.0

    @property
    def windows_run(self) -> int:
        return sum(size * count for size, count in self.batch_sizes.items())


@dataclass
class _Window:
    """A due window's bookkeeping, carried from the receiver to the batcher."""

    first_frame: int
    last_frame: int
    t_first_ms: float
    t_last_ms: float
    persons: list[int]
    buffer_ms: float
    received_ns: int  # perf_counter_ns when the newest frame was handed to the service
    due_ns: int  # perf_counter_ns when the window became pending (oldest first into a batch)


class _Stream:
    """One stream's state. The receiver owns the adapter, tracker and ring; ``pending``/``free`` are shared with the
    batcher under the service's lock; ``seq`` and ``ema`` belong to the batcher."""

    def __init__(self, name: str, spec: ModelSpec, config: ServiceConfig, now: float) -> None:
        self.name = name
        self.guard = FrameGuard(f"stream {name!r}")
        self.adapter = LayoutAdapter(spec.layout)
        self.tracker = PersonTracker(max_persons=spec.persons)
        capacity = max(4 * spec.frames, spec.frames + 4 * config.stride)
        self.ring = RingBuffer(capacity, spec.persons, spec.joints, spec.channels, max_gap_ms=config.max_gap_ms)
        self.frame = np.zeros((spec.persons, spec.joints, spec.channels), np.float32)
        window_shape = (spec.channels, spec.frames, spec.joints, spec.persons)
        self.free = [np.zeros(window_shape, np.float32) for _ in range(3)]  # filling, pending, running
        self.pending: tuple[np.ndarray, _Window] | None = None
        self.seq = 0
        self.ema: np.ndarray | None = None
        self.frames = 0
        self.last_index: int | None = None
        self.frames_dropped = 0
        self.windows = self.windows_dropped = self.predictions = self.bad_messages = 0
        self.last_seen = now
        self.status_t = now
        self.status_frames = 0
        self.persons_period: set[int] = set()
        self.errors: deque[str] = deque(maxlen=5)

    def error(self, text: str) -> None:
        self.errors.append(text[:200])


class InferenceService(SourceLoop):
    """Consume many skeleton streams, batch their due windows into one engine call, publish per stream.

    Args:
        source: ``recv(timeout_s) -> (stream, SkeletonFrame) | None`` (``ZmqSkeletonSource``); closing it is the
            caller's job. Give the source ``on_bad=service.bad_message`` so malformed messages reach the streams'
            status.
        engine: ``run`` on (N, C, T, V, M) and ``probabilities`` as ``realtime.engines.Engine``.
        spec: the model's input (``session.model_spec``).
        config: ServiceConfig.
        publisher: a ``Publisher`` (anything with ``send(topic, payload)``); None publishes nothing.
        on_prediction: called with each prediction payload after it is sent (tests, views); None for nothing.
    """

    def __init__(self, source: FrameSource, engine: EngineLike, spec: ModelSpec, config: ServiceConfig | None = None,
                 publisher: Any = None, on_prediction: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.source, self.engine, self.spec = source, engine, spec
        self.config = config or ServiceConfig()
        self.publisher, self.on_prediction = publisher, on_prediction
        self.stats = ServiceStats()
        self.latency = LatencyRecorder(STAGES)
        self.streams: dict[str, _Stream] = {}
        self._cond = threading.Condition()
        super().__init__()
        self._closing = False
        self._batch_sizes: Counter[int] = Counter()
        self._batch: np.ndarray | None = None  # (max_batch, C', T, V, M), shaped on the first window
        self._worker = threading.Thread(target=self._batch_loop, name="sttr-batcher", daemon=True)

    # ------------------------------------------------------------------ control
    def run(self) -> ServiceStats:
        """Serve until ``stop()``; the pending windows are run before it returns. Returns the run's statistics."""
        t0 = time.perf_counter()
        self._worker.start()
        try:
            while not self._stop.is_set():
                item = self.source.recv(self.config.poll_s)
                if item is not None:
                    self.on_frame(item[0], item[1], time.perf_counter_ns())
                self._housekeeping(time.monotonic())
        finally:
            self._close_worker()
            for stream in list(self.streams.values()):
                self._send_status(stream, time.monotonic())
            self.stats.wall_s = time.perf_counter() - t0
            self.stats.batch_sizes = dict(sorted(self._batch_sizes.items()))
            self.stats.latency_ms = self.latency.summary()
        return self.stats

    def _close_worker(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                logger.warning("the batcher did not stop within %.1f s", timeout_s)

    # ------------------------------------------------------------------ receiver
    def on_frame(self, name: str, frame: Any, received_ns: int | None = None) -> None:
        """Take one frame of stream ``name`` (normally called by ``run``); bad frames are counted, never raised."""
        received_ns = time.perf_counter_ns() if received_ns is None else received_ns
        stream = self._stream(name)
        if stream is None:
            return
        self.stats.frames += 1
        stream.frames += 1
        stream.last_seen = time.monotonic()
        if stream.last_index is not None and frame.index > stream.last_index + 1:
            stream.frames_dropped += frame.index - stream.last_index - 1
        stream.last_index = frame.index
        try:
            ids = self._push(stream, frame)
        except (ValueError, KeyError) as exc:  # a layout without adapter, joints that do not fit the model
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError's str quotes it
            self._bad(stream, f"frame {frame.index}: {detail}")
            return
        push_ms = (time.perf_counter_ns() - received_ns) / 1e6
        stream.persons_period.update(ids)
        if stream.frames % self.config.stride == 0 and stream.ring.ready(self.spec.frames, self.spec.fps):
            if ids or not self.config.skip_empty:
                self._submit(stream, ids, received_ns, push_ms)

    def _stream(self, name: str) -> _Stream | None:
        stream = self.streams.get(name)
        if stream is not None:
            return stream
        if len(self.streams) >= self.config.max_streams:
            self.stats.streams_refused += 1
            if self.stats.streams_refused == 1 or self.stats.streams_refused % 1000 == 0:
                logger.warning("refusing stream %r: already serving max_streams = %d streams", name,
                               self.config.max_streams)
            return None
        stream = _Stream(name, self.spec, self.config, time.monotonic())
        with self._cond:
            self.streams[name] = stream
        self.stats.streams_seen += 1
        logger.info("stream %r: first frame", name)
        return stream

    def _push(self, stream: _Stream, frame: Any) -> list[int]:
        fixed = stream.guard.frames_fixed
        frame = stream.guard(frame)
        if stream.guard.frames_fixed != fixed:
            self.stats.invalid_joints_frames += 1
            if stream.guard.frames_fixed == 1:
                stream.error(f"frame {frame.index}: non-finite or absurd joints taken as not detected")
        tracked = stream.tracker.update(stream.adapter(frame))
        ids = fill_frame(tracked, self.spec, stream.frame)
        t_ms = float(frame.timestamp_ms)
        try:
            stream.ring.push(stream.frame, t_ms, int(frame.index))
        except ValueError as exc:  # time went backwards (a restarted pose process, a looping file): start over
            stream.error(f"frame {frame.index}: {exc}; buffer restarted")
            stream.ring.clear()
            stream.tracker.reset()
            stream.ema = None
            stream.ring.push(stream.frame, t_ms, int(frame.index))
        return ids

    def _submit(self, stream: _Stream, ids: list[int], received_ns: int, push_ms: float) -> None:
        with self._cond:
            buf = stream.free.pop()  # never empty: one being filled, at most one pending, at most one running
        t0 = time.perf_counter_ns()
        stream.ring.window(self.spec.frames, self.spec.fps, out=buf, interpolation=self.config.interpolation)
        first, last, t_first, t_last = stream.ring.window_frames(self.spec.frames, self.spec.fps)
        now = time.perf_counter_ns()
        window = _Window(first, last, t_first, t_last, ids, push_ms + (now - t0) / 1e6, received_ns, now)
        with self._cond:
            stream.windows += 1
            self.stats.windows += 1
            if stream.pending is not None:  # the batcher has not taken it: the newest window wins
                stream.free.append(stream.pending[0])
                stream.windows_dropped += 1
                self.stats.windows_dropped += 1
                window.due_ns = stream.pending[1].due_ns  # keep its place in the queue
            stream.pending = (buf, window)
            self._cond.notify_all()

    def bad_message(self, topic: bytes, description: str) -> None:
        """Count a refused skeleton message against the stream its topic names (``ZmqSkeletonSource(on_bad=...)``)."""
        self.stats.bad_messages += 1
        name = topic[5:].decode("utf-8", "replace") if topic.startswith(b"skel.") else ""
        try:
            check_stream_id(name)
        except MessageError:  # no stream to blame: every live stream's next status carries it
            for stream in self.streams.values():
                stream.error(f"malformed message on topic {topic[:40]!r}: {description}")
            return
        stream = self._stream(name)
        if stream is None:
            return
        stream.last_seen = time.monotonic()  # it is talking, just not well
        stream.bad_messages += 1
        stream.error(f"malformed skeleton message: {description}")

    def _bad(self, stream: _Stream, text: str) -> None:
        self.stats.bad_messages += 1
        stream.bad_messages += 1
        stream.error(text)
        logger.warning("stream %r: %s", stream.name, text)

    # ------------------------------------------------------------------ status and expiry
    def _housekeeping(self, now: float) -> None:
        for stream in list(self.streams.values()):
            silent_s = now - stream.last_seen
            if silent_s > self.config.stream_timeout_s:
                self._drop(stream, now, silent_s)
            elif now - stream.status_t >= self.config.status_period_s:
                if silent_s >= self.config.status_period_s:
                    stream.error(f"no frame for {silent_s:.1f} s (state dropped after "
                                 f"{self.config.stream_timeout_s:g} s)")
                self._send_status(stream, now)

    def _drop(self, stream: _Stream, now: float, silent_s: float) -> None:
        with self._cond:
            self.streams.pop(stream.name, None)
            if stream.pending is not None:
                stream.free.append(stream.pending[0])
                stream.pending = None
                stream.windows_dropped += 1
                self.stats.windows_dropped += 1
        self.stats.streams_dropped += 1
        stream.error(f"silent for {silent_s:.1f} s: state dropped (a new frame starts it again from seq 0)")
        logger.info("stream %r silent for %.1f s: state dropped", stream.name, silent_s)
        self._send_status(stream, now)

    def _send_status(self, stream: _Stream, now: float) -> None:
        elapsed = now - stream.status_t
        fps = (stream.frames - stream.status_frames) / elapsed if elapsed > 0 else 0.0
        errors = list(stream.errors)
        payload = status_payload(stream=stream.name, input_fps=fps, frames_dropped=stream.frames_dropped,
                                 persons_seen=len(stream.persons_period), queue_depth=int(stream.pending is not None),
                                 backend=self.spec.backend, errors=errors)
        stream.errors.clear()
        stream.persons_period = set()
        stream.status_t, stream.status_frames = now, stream.frames
        if self.publisher is not None:
            self.publisher.send(status_topic(stream.name), payload)

    # ------------------------------------------------------------------ batcher
    def _take_batch(self) -> list[tuple[_Stream, np.ndarray, _Window]]:
        """Wait for pending windows; return up to ``max_batch`` of them, longest-waiting first ([] once closing)."""
        cfg = self.config
        with self._cond:
            while not self._closing and not self._pending_streams():
                self._cond.wait(0.5)
            if cfg.batch_wait_ms > 0 and not self._closing:
                deadline = time.monotonic() + cfg.batch_wait_ms / 1e3
                while not self._closing:
                    pending = len(self._pending_streams())
                    left = deadline - time.monotonic()
                    if pending >= min(cfg.max_batch, len(self.streams)) or left <= 0:
                        break
                    self._cond.wait(left)
            ready = sorted(self._pending_streams(), key=lambda s: s.pending[1].due_ns)[:cfg.max_batch]
            batch = []
            for stream in ready:
                buf, window = stream.pending
                stream.pending = None
                batch.append((stream, buf, window))
            return batch

    def _pending_streams(self) -> list[_Stream]:
        return [s for s in self.streams.values() if s.pending is not None]

    def _batch_loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                with self._cond:
                    if self._closing and not self._pending_streams():
                        return
                continue
            try:
                self._run_batch(batch)
            except Exception as exc:  # the service goes on; every stream in the batch reports it
                self.stats.errors += 1
                logger.exception("batch of %d windows failed", len(batch))
                for stream, _, _ in batch:
                    stream.error(f"inference: {exc!r}")
            finally:
                with self._cond:
                    for stream, buf, _ in batch:
                        stream.free.append(buf)
                    self._cond.notify_all()

    def _run_batch(self, batch: list[tuple[_Stream, np.ndarray, _Window]]) -> None:
        n = len(batch)
        t0 = time.perf_counter_ns()
        prep_ms = []
        for i, (_, buf, _) in enumerate(batch):
            t = time.perf_counter_ns()
            x = self.spec.preprocess(buf) if self.spec.preprocess is not None else buf
            if self._batch is None:
                self._batch = np.zeros((self.config.max_batch,) + x.shape, np.float32)
            self._batch[i] = x
            prep_ms.append((time.perf_counter_ns() - t) / 1e6)
        t1 = time.perf_counter_ns()
        probs = np.asarray(self.engine.probabilities(self.engine.run(self._batch[:n])), dtype=np.float64)
        self.stats.batches += 1
        self._batch_sizes[n] += 1
        best_per_window: list[list[tuple[int, float]] | None] = []
        for (stream, _, window), p in zip(batch, probs):
            if not np.isfinite(p).all():  # never publish NaN scores, nor keep them in the smoothed average
                self.stats.errors += 1
                stream.error(f"window ending at frame {window.last_frame}: the model gave non-finite scores; "
                             "no prediction")
                best_per_window.append(None)
                continue
            if self.config.smoothing > 0:
                a = self.config.smoothing
                stream.ema = p if stream.ema is None else a * stream.ema + (1.0 - a) * p
                p = stream.ema
            best_per_window.append(top_k(p, self.config.top_k))
        t2 = time.perf_counter_ns()
        logger.debug("batch of %d: preprocess %.2f ms, engine + top-k %.2f ms", n, (t1 - t0) / 1e6, (t2 - t1) / 1e6)
        for (stream, _, window), best, prep in zip(batch, best_per_window, prep_ms):
            if best is not None:
                self._publish(stream, window, best, prep, (t2 - t1) / 1e6, t2)

    def _publish(self, stream: _Stream, window: _Window, best: list[tuple[int, float]], prep_ms: float,
                 infer_ms: float, t_infer_end: int) -> None:
        labels = self.spec.labels
        topk = [(labels[i] if i < len(labels) else str(i), i, p) for i, p in best]
        fps = self.spec.fps or _fps_of(window, self.spec.frames)
        window_fields = {"first_frame": window.first_frame, "last_frame": window.last_frame,
                         "frames": self.spec.frames, "fps": fps, "t_first_ms": window.t_first_ms,
                         "t_last_ms": window.t_last_ms}
        now = time.perf_counter_ns()
        latency = {"capture": 0.0, "pose": 0.0, "buffer": window.buffer_ms + prep_ms, "inference": infer_ms,
                   "publish": (now - t_infer_end) / 1e6, "total": (now - window.received_ns) / 1e6}
        payload = prediction_payload(stream=stream.name, seq=stream.seq, window=window_fields,
                                     persons=window.persons, topk=topk, model=self.spec.name,
                                     backend=self.spec.backend, latency_ms=latency)
        stream.seq += 1
        if self.publisher is not None:
            self.publisher.send(prediction_topic(stream.name), payload)
        stream.predictions += 1
        self.stats.predictions += 1
        self.latency.record_many(payload["latency_ms"])
        if self.on_prediction is not None:
            self.on_prediction(payload)


def _fps_of(window: _Window, frames: int) -> float:
    """The input rate over a window, for models that keep the input rate (no fps in their spec)."""
    span = window.t_last_ms - window.t_first_ms
    return (frames - 1) * 1000.0 / span if span > 0 else 1.0

