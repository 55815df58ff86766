"""A typed subscriber for programs that consume sttr predictions (``sttr.realtime.client``).

Example::

    from sttr.realtime.client import Subscriber, Prediction

    with Subscriber("tcp://127.0.0.1:5555", topics=["pred."], timeout_s=5.0) as sub:
        for msg in sub:                       # stops after 5 s without a message
            if isinstance(msg, Prediction):
                print(msg.seq, msg.label, msg.score, msg.latency_ms["total"])

Only pyzmq (and msgpack for msgpack payloads) is needed: no numpy, no torch.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .messages import (PREDICTION_SCHEMA, STATUS_SCHEMA, MessageError, decode, validate_prediction,
                       validate_status)
from .publisher import DEFAULT_PUB_ADDR, check_address, require_zmq

__all__ = ["Subscriber", "Prediction", "Status", "TopK", "WindowInfo", "parse_message"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopK:
    """One class of a prediction: label, class index and calibrated probability."""

    label: str
    index: int
    score: float


@dataclass(frozen=True)
class WindowInfo:
    """The frames a prediction was made from (source frame indices, capture times in monotonic ms)."""

    first_frame: int
    last_frame: int
    frames: int
    fps: float
    t_first_ms: float
    t_last_ms: float


@dataclass(frozen=True)
class Prediction:
    """A ``sttr.prediction/1`` message. ``received_ns`` is ``time.perf_counter_ns()`` at receipt (this process)."""

    topic: str
    stream: str
    seq: int
    window: WindowInfo
    persons: tuple[int, ...]
    topk: tuple[TopK, ...]
    model: str
    backend: str
    latency_ms: Mapping[str, float]
    received_ns: int = 0

    @property
    def label(self) -> str:
        """The best class's label."""
        return self.topk[0].label

    @property
    def score(self) -> float:
        """The best class's probability."""
        return self.topk[0].score

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], topic: str = "", received_ns: int = 0) -> Prediction:
        """Validate a decoded payload and build the dataclass (MessageError when malformed)."""
        p = validate_prediction(payload)
        return cls(topic=topic, stream=p["stream"], seq=p["seq"], window=WindowInfo(**p["window"]),
                   persons=tuple(p["persons"]), topk=tuple(TopK(**t) for t in p["topk"]), model=p["model"],
                   backend=p["backend"], latency_ms=dict(p["latency_ms"]), received_ns=received_ns)


@dataclass(frozen=True)
class Status:
    """A ``sttr.status/1`` message (about once a second per stream)."""

    topic: str
    stream: str
    input_fps: float
    frames_dropped: int
    persons_seen: int
    queue_depth: int
    backend: str
    errors: tuple[str, ...] = field(default_factory=tuple)
    received_ns: int = 0

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], topic: str = "", received_ns: int = 0) -> Status:
        """Validate a decoded payload and build the dataclass (MessageError when malformed)."""
        p = validate_status(payload)
        return cls(topic=topic, stream=p["stream"], input_fps=float(p["input_fps"]),
                   frames_dropped=p["frames_dropped"], persons_seen=p["persons_seen"], queue_depth=p["queue_depth"],
                   backend=p["backend"], errors=tuple(p["errors"]), received_ns=received_ns)


def parse_message(frames: Sequence[bytes], received_ns: int = 0) -> Prediction | Status | None:
    """Turn a received ``[topic, payload]`` into a Prediction or Status; None for another schema.

    Raises:
        MessageError: not two frames, an undecodable payload, or a payload that breaks its schema.
    """
    if len(frames) != 2:
        raise MessageError(f"expected a [topic, payload] message of 2 frames, got {len(frames)}")
    topic = bytes(frames[0]).decode(errors="replace")
    payload = decode(bytes(frames[1]))
    schema = payload.get("schema")
    if schema == PREDICTION_SCHEMA:
        return Prediction.from_payload(payload, topic, received_ns)
    if schema == STATUS_SCHEMA:
        return Status.from_payload(payload, topic, received_ns)
    return None


def _check_timeout(timeout_s: Any) -> float | None:
    """`timeout_s` as a float >= 0, or None (wait forever); ValueError otherwise."""
    if timeout_s is None:
        return None
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s >= 0:
        raise ValueError(f"timeout_s must be a number of seconds >= 0, or None to wait forever; got {timeout_s!r}")
    return float(timeout_s)


def _topic_prefixes(topics: Any) -> list[bytes]:
    """Topic prefixes as bytes: one str or bytes, or a sequence of them."""
    items = [topics] if isinstance(topics, (str, bytes)) else topics
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"topics must be a topic prefix (str, e.g. 'pred.') or a list of them ('' for every "
                        f"message), got {topics!r}") from None
    out = []
    for topic in items:
        if not isinstance(topic, (str, bytes)):
            raise TypeError(f"topics must be str (or bytes) prefixes such as 'pred.', 'pred.cam0', 'status.', got "
                            f"{topic!r} in {topics!r}")
        out.append(topic.encode() if isinstance(topic, str) else bytes(topic))
    return out


class Subscriber:
    """Connect to an sttr publisher and receive typed messages.

    Args:
        addr: the publisher's endpoint.
        topics: topic prefixes to subscribe to, one or a list (``"pred."`` all predictions, ``"pred.cam0"`` one
            stream, ``"status."`` status messages, ``""`` everything); str or bytes.
        timeout_s: default wait in seconds for ``recv`` and for iteration (None waits forever); iteration ends
            quietly after this long without a message, ``recv`` raises TimeoutError.
        strict: raise MessageError on a malformed message instead of logging and skipping it.
        rcvhwm: receive queue, in messages.
        context: a ``zmq.Context`` (the publisher's, for ``inproc://``); the global instance when None.
    """

    def __init__(self, addr: str = DEFAULT_PUB_ADDR, topics: str | Sequence[str] = ("pred.", "status."),
                 timeout_s: float | None = None, strict: bool = False, rcvhwm: int = 1000,
                 context: Any = None) -> None:
        zmq = require_zmq()
        self._zmq = zmq
        self.addr = check_address(addr)
        self.timeout_s = _check_timeout(timeout_s)
        prefixes = _topic_prefixes(topics)
        self.strict = strict
        self.invalid = 0
        ctx = context if context is not None else zmq.Context.instance()
        self._sock = ctx.socket(zmq.SUB)
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
            for topic in prefixes:
                self._sock.setsockopt(zmq.SUBSCRIBE, topic)
            self._sock.connect(self.addr)
        except BaseException:  # an unclosed socket would block the context's term() (and the program's exit)
            self._sock.close(0)
            raise

    def recv(self, timeout_s: float | None = None) -> Prediction | Status:
        """The next Prediction or Status.

        Args:
            timeout_s: seconds to wait; None uses the subscriber's default (None there waits forever).

        Raises:
            TimeoutError: nothing arrived in time.
            MessageError: a malformed message, with ``strict``.
        """
        if self._sock.closed:
            raise RuntimeError(f"this Subscriber to {self.addr} is closed; make a new one")
        timeout_s = self.timeout_s if timeout_s is None else _check_timeout(timeout_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            wait_ms = None if deadline is None else max(int((deadline - time.monotonic()) * 1000), 0)
            if not self._sock.poll(wait_ms, self._zmq.POLLIN):
                raise TimeoutError(f"no message from {self.addr} within {timeout_s} s")
            frames = self._sock.recv_multipart(copy=True)
            now = time.perf_counter_ns()
            try:
                msg = parse_message(frames, now)
            except MessageError as exc:
                if self.strict:
                    raise
                self.invalid += 1
                logger.warning("skipping a malformed message from %s: %s", self.addr, exc)
                continue
            if msg is not None:
                return msg

    def __iter__(self) -> Iterator[Prediction | Status]:
        """Yield messages until ``timeout_s`` passes without one (forever when it is None)."""
        while True:
            try:
                yield self.recv()
            except TimeoutError:
                return

    def close(self) -> None:
        """Close the socket."""
        if not self._sock.closed:
            self._sock.close(0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
