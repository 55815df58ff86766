"""Skeleton frames over ZeroMQ, so any external pose estimator can feed us (and a pose process can feed a server).

Wire format (DESIGN.md, `realtime.messages`): multipart `[topic, payload]`, topic `skel.<stream>`, payload a
`sttr.skeleton/1` map in JSON (default) or msgpack::

    {"schema": "sttr.skeleton/1", "stream": "cam0", "layout": "mediapipe33", "timestamp_ms": 1234.5, "index": 10,
     "persons": [{"id": 3, "joints": [[x, y(, z)], ...], "scores": [s, ...]}]}

`encode_skeleton_frame` / `decode_skeleton_frame` are the pair every sender and receiver uses; decoding validates
and raises `MessageError` naming the field and what was expected. `ZmqSkeletonSource` (SUB) yields SkeletonFrames
and skips a bad message with a logged, recorded error instead of stopping; `ZmqSkeletonSender` (PUB) is the sending
side. Sockets bind to loopback by default. pyzmq is imported when a socket is made.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from sttr.model.skeleton import get_layout

from ..frame import SkeletonFrame
from ..messages import (MessageError, decode, encode, skeleton_payload, skeleton_topic, validate_skeleton)

__all__ = ["encode_skeleton_frame", "decode_skeleton_frame", "ZmqSkeletonSource", "ZmqSkeletonSender",
           "DEFAULT_ENDPOINT"]

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"


def _zmq() -> Any:
    try:
        import zmq
    except ImportError as err:
        raise ImportError("the ZeroMQ skeleton source needs pyzmq: pip install 'sttr[live]' (or pip install pyzmq)") \
            from err
    return zmq


def encode_skeleton_frame(frame: SkeletonFrame, stream: str = "cam0", fmt: str = "json") -> list[bytes]:
    """A SkeletonFrame as the multipart message `[b"skel.<stream>", payload]` (the image is not sent)."""
    if not (np.isfinite(frame.joints).all() and np.isfinite(frame.scores).all()):
        raise ValueError(f"frame {frame.index}: joints and scores must be finite to be sent")
    payload = skeleton_payload(stream=stream, layout=frame.layout, timestamp_ms=frame.timestamp_ms,
                               index=frame.index, joints=frame.joints, scores=frame.scores,
                               track_ids=frame.track_ids)
    return [skeleton_topic(stream), encode(payload, fmt)]


def _check_topic(topic: bytes, stream: str) -> None:
    expected = f"skel.{stream}".encode()
    if topic != expected:
        raise MessageError(f"topic {topic!r} does not match the payload's stream: expected {expected!r}")


def _known_layout(name: str) -> Any:
    """The registered layout of that name, or None; a message never makes us read a file, so no path lookups."""
    if "/" in name or "\\" in name or name.lower().endswith((".yaml", ".yml", ".json")):
        raise MessageError(f"skeleton.layout: expected a layout name such as 'mediapipe33', got a path {name[:60]!r}")
    try:
        return get_layout(name)
    except (KeyError, ValueError):
        return None  # a user layout we do not know: trust the message's shape


def _numbers(values: list[Any], what: str) -> np.ndarray:
    """Nested lists of numbers as float32; MessageError for strings, booleans, nulls or ragged lists."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError) as err:
        raise MessageError(f"skeleton.persons: {what} must be numbers ({err})") from None
    if array.dtype.kind not in "iuf":  # 'U' strings, 'b' booleans, 'O' nulls / huge integers
        got = {"U": "text", "S": "text", "b": "true/false"}.get(array.dtype.kind, "null or other non-number")
        raise MessageError(f"skeleton.persons: {what} must be numbers, got {got} values")
    return array.astype(np.float32)


def _frame_from_payload(payload: dict[str, Any]) -> SkeletonFrame:
    layout = payload["layout"]
    persons = payload["persons"]
    known = _known_layout(layout)
    num_joints, dims = (known.num_joints, 3 if known.is_3d else 2) if known is not None else (None, 2)
    if persons:
        joints = _numbers([p["joints"] for p in persons], "joints")
        scores = _numbers([p["scores"] for p in persons], "scores")
        if num_joints is not None and joints.shape[1] != num_joints:
            raise MessageError(f"skeleton.persons: layout {layout!r} has {num_joints} joints, got {joints.shape[1]}")
        if not (np.isfinite(joints).all() and np.isfinite(scores).all()):
            raise MessageError("skeleton.persons: joints and scores must be finite numbers")
    else:
        joints = np.zeros((0, num_joints or 0, dims), np.float32)
        scores = np.zeros((0, num_joints or 0), np.float32)
    ids = [p["id"] for p in persons]
    track_ids = [int(i) for i in ids] if ids and all(isinstance(i, int) and not isinstance(i, bool) for i in ids) \
        else None
    return SkeletonFrame(layout=layout, timestamp_ms=float(payload["timestamp_ms"]), index=int(payload["index"]),
                         joints=joints, scores=scores, track_ids=track_ids)


def decode_skeleton_frame(parts: Sequence[bytes] | bytes) -> tuple[str, SkeletonFrame]:
    """(stream, SkeletonFrame) from `[topic, payload]` (or a bare payload).

    Raises:
        MessageError: Undecodable bytes, a payload that is not `sttr.skeleton/1`, shapes that do not match the
            layout, non-finite numbers, or a topic that disagrees with the payload's stream.
    """
    if isinstance(parts, (bytes, bytearray, memoryview)):
        topic, data = None, bytes(parts)
    elif len(parts) == 2:
        topic, data = bytes(parts[0]), bytes(parts[1])
    else:
        raise MessageError(f"expected a [topic, payload] message, got {len(parts)} frame(s)")
    payload = decode(data)
    validate_skeleton(payload)
    if not (isinstance(payload["timestamp_ms"], (int, float)) and math.isfinite(payload["timestamp_ms"])):
        raise MessageError(f"skeleton.timestamp_ms: expected a finite number, got {payload['timestamp_ms']!r}")
    if topic is not None:
        _check_topic(topic, payload["stream"])
    return payload["stream"], _frame_from_payload(payload)


class ZmqSkeletonSource:
    """Subscribe to skeleton frames.

    Args:
        endpoint: ZeroMQ address, e.g. `tcp://127.0.0.1:5570` or `inproc://skel`, or several (one pose process per
            camera: one socket connects to them all, so one poll serves every stream).
        streams: Stream ids to accept; None accepts every `skel.*` topic.
        bind: Bind (many senders connect to us) instead of connecting to one sender.
        timeout_s: End the iteration after this long without a message; None waits until `close()`.
        context: A zmq.Context to share (needed for inproc://); None uses the global instance.
        rcvhwm: Receive high-water mark (messages queued before ZeroMQ drops new ones).
        on_bad: Called as `on_bad(topic, description)` for each refused message (the service counts them per
            stream); the source has already logged and recorded it.

    `errors` keeps the last bad messages' descriptions; `stats` counts received, bad and per-stream frames.

    Iterating (`for frame in source`, what `sttr-live --skeleton-sub` does) yields ONE stream: the first one seen;
    frames of other streams are counted in `stats["ignored"]` and said once (their buffers would mix into one). Use
    `recv` / `iter_with_stream` (`sttr serve`) for several streams.
    """

    def __init__(self, endpoint: str | Sequence[str] = DEFAULT_ENDPOINT, *, streams: Sequence[str] | None = None,
                 bind: bool = False, timeout_s: float | None = None, context: Any = None, rcvhwm: int = 1000,
                 on_bad: Callable[[bytes, str], None] | None = None) -> None:
        zmq = _zmq()
        self._zmq = zmq
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        if not endpoints:
            raise ValueError("the skeleton subscriber needs at least one ZeroMQ endpoint, e.g. tcp://127.0.0.1:5570")
        self.endpoint = endpoint if isinstance(endpoint, str) else ",".join(endpoints)
        self.timeout_s, self.on_bad = timeout_s, on_bad
        self.errors: list[str] = []
        self.stats: dict[str, Any] = {"received": 0, "bad": 0, "ignored": 0, "streams": {}}
        self.streams = set(streams) if streams else None  # exact ids: ZeroMQ subscribes to topic prefixes
        self.stream: str | None = None  # the one stream plain iteration follows, once seen
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        for topic in ([skeleton_topic(s) for s in streams] if streams else [b"skel."]):
            self._socket.setsockopt(zmq.SUBSCRIBE, topic)
        for address in endpoints:
            try:
                (self._socket.bind if bind else self._socket.connect)(address)
            except zmq.ZMQError as err:
                self._socket.close()
                raise OSError(f"could not {'bind' if bind else 'connect'} the skeleton subscriber to {address}: "
                              f"{err}") from err
        self._closed = False
        self._lock = threading.Lock()  # the socket is closed by whichever thread holds it last
        self._receiving = False

    def recv(self, timeout_s: float | None = None) -> tuple[str, SkeletonFrame] | None:
        """The next valid (stream, frame), or None after `timeout_s` (None: wait forever) or once closed.

        `close()` from another thread is safe: a waiting `recv` notices within 100 ms and closes the socket itself.
        """
        with self._lock:
            if self._closed:
                return None
            self._receiving = True
        try:
            return self._recv(timeout_s)
        finally:
            with self._lock:
                self._receiving = False
                if self._closed:
                    self._socket.close(linger=0)

    def _recv(self, timeout_s: float | None) -> tuple[str, SkeletonFrame] | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._closed:
            wait = 100 if deadline is None else max(0, min(100, int((deadline - time.monotonic()) * 1e3)))
            if self._socket.poll(wait, self._zmq.POLLIN):
                parts = self._socket.recv_multipart()
                try:
                    stream, frame = decode_skeleton_frame(parts)
                except MessageError as err:
                    self._bad(parts, err)
                    if deadline is not None and time.monotonic() >= deadline:
                        return None  # a flood of bad messages must not starve the caller's timeout
                    continue
                if self.streams is not None and stream not in self.streams:  # skel.cam0 also matched skel.cam01
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
                    continue
                self.stats["received"] += 1
                self.stats["streams"][stream] = self.stats["streams"].get(stream, 0) + 1
                return stream, frame
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def _bad(self, parts: Sequence[bytes], err: Exception) -> None:
        topic = parts[0][:40] if parts else b""
        msg = f"bad skeleton message on topic {topic!r}: {err}"
        logger.warning(msg)
        self.stats["bad"] += 1
        self.errors = (self.errors + [msg])[-20:]
        if self.on_bad is not None:
            self.on_bad(bytes(parts[0]) if parts else b"", str(err))

    def iter_with_stream(self) -> Iterator[tuple[str, SkeletonFrame]]:
        """(stream, frame) pairs until `timeout_s` passes without a message or the source is closed."""
        while True:
            item = self.recv(self.timeout_s)
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[SkeletonFrame]:
        ignored: set[str] = set()
        for stream, frame in self.iter_with_stream():
            if self.stream is None:
                self.stream = stream
                logger.info("skeleton subscriber: following stream %r", stream)
            if stream == self.stream:
                yield frame
                continue
            self.stats["ignored"] += 1
            if stream not in ignored:  # said once per stream, in the log and in the next status message
                ignored.add(stream)
                msg = (f"skeleton subscriber on {self.endpoint}: following stream {self.stream!r} (the first seen); "
                       f"ignoring frames of stream {stream!r}: one sttr-live serves one stream, `sttr serve` several")
                logger.warning(msg)
                self.errors = (self.errors + [msg])[-20:]

    @property
    def frames_dropped(self) -> int:
        """Messages refused as invalid (ZeroMQ's own high-water-mark drops are not visible here)."""
        return self.stats["bad"]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._receiving:
                self._socket.close(linger=0)

    def __enter__(self) -> "ZmqSkeletonSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ZmqSkeletonSender:
    """Publish SkeletonFrames as `skel.<stream>` messages (a pose process, or a test).

    Args:
        endpoint: Address to bind (default) or connect to.
        stream: Stream id for the topic and payload.
        bind: Bind (the usual publisher side); False connects to a binding `ZmqSkeletonSource`.
        fmt: 'json' or 'msgpack'.
        context: A zmq.Context to share (needed for inproc://).
        sndhwm: Send high-water mark; beyond it new messages are dropped, never queued without bound.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, stream: str = "cam0", *, bind: bool = True,
                 fmt: str = "json", context: Any = None, sndhwm: int = 100) -> None:
        zmq = _zmq()
        self.stream, self.fmt = stream, fmt
        encode({"probe": 1}, fmt)  # an unknown format fails here, not on the first frame
        self._socket = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        try:
            (self._socket.bind if bind else self._socket.connect)(endpoint)
        except zmq.ZMQError as err:
            self._socket.close()
            raise OSError(f"could not {'bind' if bind else 'connect'} the skeleton sender to {endpoint}: {err}") \
                from err
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint

    def send(self, frame: SkeletonFrame) -> None:
        self._socket.send_multipart(encode_skeleton_frame(frame, self.stream, self.fmt))

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> "ZmqSkeletonSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
