"""When a window goes to the model, and what happens when the model cannot keep up.

Decision: inference runs in its own worker thread by default. The frame loop (capture, pose, tracker, ring buffer)
never waits for the engine, and ONNX Runtime / TensorRT release the GIL while they run, so on two cores pose
estimation of frame t+1 overlaps inference of the window ending at frame t. ``threaded=False`` runs the handler
inline in the caller instead (deterministic; used by tests and by single-core runs).

Policy under load (``mode``):
    ``latest`` (live sources): one pending slot. A new window replaces a pending one that the worker has not started
        (counted in ``dropped``): the newest window wins, the queue depth is 0 or 1, latency cannot grow.
    ``block`` (``--fast`` replay of files): the producer waits for the pending slot to empty, so no window is lost
        and the source is read only as fast as the engine consumes windows.

Windows live in three preallocated (C, T, V, M) buffers (one being filled, one pending, one being run), so no
window is allocated per stride. numpy only.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = ["WindowScheduler", "Mode"]

logger = logging.getLogger(__name__)

Mode = Literal["latest", "block"]
Handler = Callable[[np.ndarray, Any], None]


class WindowScheduler:
    """Decides every ``stride`` frames that a window is due and hands windows to a handler.

    Args:
        window_shape: (C, T, V, M) of one window.
        handler: called as ``handler(window, meta)`` with a buffer owned by the scheduler (valid during the call).
        stride: frames between two windows (>= 1).
        mode: ``latest`` or ``block`` (see the module docstring).
        threaded: run the handler in a worker thread (True) or inline in ``submit`` (False).
        on_idle: called by the worker about every ``idle_period_s`` while no window is pending (e.g. status
            messages when the source stalls); None for nothing.
        idle_period_s: see ``on_idle``.
    """

    def __init__(self, window_shape: tuple[int, int, int, int], handler: Handler, stride: int = 8,
                 mode: Mode = "latest", threaded: bool = True, on_idle: Callable[[], None] | None = None,
                 idle_period_s: float = 0.25) -> None:
        if int(stride) < 1:
            raise ValueError(f"stride must be >= 1 frame, got {stride}")
        if mode not in ("latest", "block"):
            raise ValueError(f"mode must be 'latest' or 'block', got {mode!r}")
        self.stride = int(stride)
        self.mode: Mode = mode
        self.threaded = bool(threaded)
        self._handler = handler
        self._on_idle = on_idle
        self._idle_period_s = float(idle_period_s)
        self._free = [np.zeros(window_shape, dtype=np.float32) for _ in range(3)]
        self._pending: tuple[np.ndarray, Any] | None = None
        self._busy = False
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._frames = 0
        self.submitted = 0
        self.completed = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> WindowScheduler:
        """Start the worker thread (no-op when inline)."""
        if self.threaded and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="sttr-inference", daemon=True)
            self._thread.start()
        return self

    def close(self, drain: bool = True, timeout_s: float = 10.0) -> None:
        """Stop the worker; with ``drain`` the pending window is run first."""
        with self._cond:
            if not drain and self._pending is not None:
                self._free.append(self._pending[0])
                self._pending = None
                self.dropped += 1
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("inference worker did not stop within %.1f s", timeout_s)
            self._thread = None

    def __enter__(self) -> WindowScheduler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close(drain=exc[0] is None)

    # ------------------------------------------------------------------ producer side
    def frame_arrived(self) -> bool:
        """Count one input frame; True when a window is due (every ``stride`` frames)."""
        self._frames += 1
        return self._frames % self.stride == 0

    @property
    def queue_depth(self) -> int:
        """Windows waiting for the engine (0 or 1)."""
        return int(self._pending is not None)

    @property
    def busy(self) -> bool:
        """Whether the handler is running now."""
        return self._busy

    def acquire(self) -> np.ndarray:
        """A free window buffer to fill; in ``block`` mode waits until the pending slot has been taken."""
        with self._cond:
            if self.mode == "block" and self.threaded:
                while self._pending is not None and not self._closing:
                    self._cond.wait()
            if not self._free:  # cannot happen with one producer (3 buffers: filling, pending, running)
                raise RuntimeError("no free window buffer: acquire() called twice without submit()")
            return self._free.pop()

    def submit(self, window: np.ndarray, meta: Any = None) -> None:
        """Hand a filled buffer (from ``acquire``) to the engine side; replaces a pending one in ``latest`` mode."""
        self.submitted += 1
        if not self.threaded:
            try:
                self._run(window, meta)
            finally:
                self._free.append(window)
            return
        with self._cond:
            if self._closing:
                self._free.append(window)
                raise RuntimeError("the scheduler is closed")
            if self._pending is not None:  # only in latest mode: the worker has not started it yet
                self._free.append(self._pending[0])
                self.dropped += 1
            self._pending = (window, meta)
            self._cond.notify_all()

    # ------------------------------------------------------------------ worker side
    def _run(self, window: np.ndarray, meta: Any) -> None:
        self._busy = True
        try:
            self._handler(window, meta)
            self.completed += 1
        except Exception as exc:  # the frame loop goes on; the pipeline reports it in status messages
            self.errors += 1
            self.last_error = exc
            logger.exception("window handler failed")
        finally:
            self._busy = False

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    if not self._cond.wait(self._idle_period_s) and self._on_idle is not None:
                        break
                if self._pending is None:
                    if self._closing:
                        return
                    job = None
                else:
                    job, self._pending = self._pending, None
                    self._cond.notify_all()
            if job is None:
                self._idle()
                continue
            try:
                self._run(*job)
            finally:
                with self._cond:
                    self._free.append(job[0])
                    self._cond.notify_all()

    def _idle(self) -> None:
        if self._on_idle is None:
            return
        try:
            self._on_idle()
        except Exception:
            logger.exception("idle callback failed")
