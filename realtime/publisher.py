"""ZeroMQ publisher of prediction and status messages: multipart ``[topic, payload]``.

The socket is an XPUB (a PUB that also sees subscriptions, so ``wait_for_subscriber`` can poll instead of sleeping)
bound to loopback by default. Every send is non-blocking (``zmq.NOBLOCK``): a slow or vanished subscriber never
stalls the pipeline. Each subscriber has its own queue of at most ``sndhwm`` messages; what does not fit is dropped
for that subscriber by ZeroMQ. With ``nodrop=True`` (``ZMQ_XPUB_NODROP``) a full queue is reported instead, and the
message is counted in ``dropped`` (it then reaches no subscriber).

The socket is guarded by a lock: the inference thread sends predictions and the frame loop may send status.
pyzmq is imported when a Publisher is made (``pip install 'sttr[live]'``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .messages import Format, NonFiniteError, encode

__all__ = ["Publisher", "PortInUseError", "DEFAULT_PUB_ADDR", "require_zmq", "check_address"]

logger = logging.getLogger(__name__)

DEFAULT_PUB_ADDR = "tcp://127.0.0.1:5555"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class PortInUseError(OSError):
    """The address to bind is taken (another sttr-live, or another program)."""


def require_zmq():
    """Import pyzmq or raise ImportError naming the install command."""
    try:
        import zmq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ZeroMQ messaging needs pyzmq: pip install 'sttr[live]'") from exc
    return zmq


def check_address(addr: str) -> str:
    """Validate a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME); returns it."""
    if not isinstance(addr, str) or "://" not in addr:
        raise ValueError(f"ZeroMQ address must look like tcp://127.0.0.1:5555, ipc://PATH or inproc://NAME, "
                         f"got {addr!r}")
    scheme = addr.split("://", 1)[0]
    if scheme not in ("tcp", "ipc", "inproc"):
        raise ValueError(f"ZeroMQ address scheme must be tcp, ipc or inproc, got {scheme!r} in {addr!r}")
    if scheme == "tcp":
        parts = urlsplit(addr)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or (port is None and not addr.endswith(":*")):
            raise ValueError(f"tcp address must be tcp://HOST:PORT (e.g. tcp://127.0.0.1:5555), got {addr!r}")
    return addr


def _is_loopback(addr: str) -> bool:
    if not addr.startswith("tcp://"):
        return True  # ipc / inproc never leave the machine
    host = urlsplit(addr).hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


class Publisher:
    """Bind a ZeroMQ publisher and send ``[topic, payload]`` without ever blocking.

    Args:
        addr: endpoint to bind; loopback by default. ``tcp://*:PORT`` or a public address publishes to the network
            (logged as a warning: it is the user's explicit choice). ``tcp://127.0.0.1:*`` picks a free port.
        fmt: payload encoding, ``json`` or ``msgpack``.
        sndhwm: per-subscriber send queue, in messages.
        nodrop: report a full queue (counted in ``dropped``) instead of dropping silently per subscriber.
        context: a ``zmq.Context`` (needed for ``inproc://`` with a subscriber in the same process); the global
            instance when None.
        option: the command-line flag that gave ``addr``, named in the hint when the port is taken.

    Raises:
        PortInUseError: the address is taken; the message says what to do.
        ValueError: a malformed address.
    """

    def __init__(self, addr: str = DEFAULT_PUB_ADDR, fmt: Format = "json", sndhwm: int = 1000, nodrop: bool = False,
                 context: Any = None, option: str = "--pub") -> None:
        zmq = require_zmq()
        encode({}, fmt)  # validates fmt (and that msgpack is importable) before binding
        self.fmt: Format = fmt
        self._zmq = zmq
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.refused = 0  # messages with NaN or infinite numbers: never sent (a subscriber could not trust them)
        self.subscriptions = 0
        self._ctx = context if context is not None else zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, int(sndhwm))
        self._sock.setsockopt(zmq.XPUB_VERBOSER, 1)  # see every subscribe and unsubscribe
        if nodrop:
            self._sock.setsockopt(zmq.XPUB_NODROP, 1)
        try:
            self._sock.bind(check_address(addr))
        except zmq.ZMQError as exc:
            self._sock.close(0)
            if exc.errno == zmq.EADDRINUSE:
                raise PortInUseError(f"cannot publish on {addr}: the address is already in use (another sttr-live?); "
                                     f"stop that program or pick another port, e.g. {option} "
                                     f"{_next_port(addr)}") from None
            raise OSError(f"cannot publish on {addr}: {exc}") from None
        self.addr = self._sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        if not _is_loopback(self.addr):
            logger.warning("publishing on %s: reachable from the network, not only this machine", self.addr)
        logger.info("publishing on %s (%s)", self.addr, fmt)

    # ------------------------------------------------------------------ sending
    def send(self, topic: bytes | str, payload: Mapping[str, Any]) -> bool:
        """Encode and send one message without blocking; False (and ``dropped`` += 1) when it could not go.

        A payload holding a NaN or an infinite number is not sent (``refused`` += 1, logged): JSON cannot carry it,
        and msgpack would carry it to subscribers that validate messages (``validate_prediction``) and reject them.
        """
        try:
            data = encode(payload, self.fmt)
        except NonFiniteError:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                logger.warning("not publishing a %r message with non-finite numbers (%d so far)", topic, self.refused)
            return False
        return self.send_raw(topic, data)

    def send_raw(self, topic: bytes | str, data: bytes) -> bool:
        """Send an already encoded payload without blocking; False (and ``dropped`` += 1) when it could not go."""
        if isinstance(topic, str):
            topic = topic.encode()
        zmq = self._zmq
        with self._lock:
            self._drain_subscriptions()
            try:
                self._sock.send_multipart([topic, data], flags=zmq.NOBLOCK, copy=len(data) < 65536)
            except zmq.Again:
                self.dropped += 1
                return False
            self.sent += 1
            return True

    # ------------------------------------------------------------------ subscribers
    def _drain_subscriptions(self) -> None:
        zmq = self._zmq
        while True:
            try:
                event = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":
                self.subscriptions += 1
            elif event[:1] == b"\x00":
                self.subscriptions = max(self.subscriptions - 1, 0)

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Poll (no sleeping) until at least one subscription is active or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                self._drain_subscriptions()
                if self.subscriptions > 0:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._sock.poll(int(min(left, 0.01) * 1000) + 1, self._zmq.POLLIN)

    # ------------------------------------------------------------------ lifecycle
    def close(self, linger_s: float = 0.0) -> None:
        """Close the socket. Messages still queued for subscribers are discarded (the default: an abort must not
        wait on a slow subscriber), or given up to ``linger_s`` seconds to go out (the normal end of a run, whose
        last messages would otherwise be lost)."""
        with self._lock:
            if not self._sock.closed:
                self._sock.close(int(max(0.0, linger_s) * 1000))

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _next_port(addr: str) -> str:
    parts = urlsplit(addr) if addr.startswith("tcp://") else None
    if parts is None or parts.port is None:
        return "tcp://127.0.0.1:5556"
    return f"tcp://{parts.hostname}:{parts.port + 1}"
