"""A live one-line (TTY) or once-a-second (log, pipe) view of a running pipeline: fps, latency and top-k.

It is a pipeline observer: ``on_prediction`` / ``on_status`` run in the pipeline's threads and only store the
latest values; the line is written at most every ``period_s`` seconds. Writes to a text stream (stderr by default),
so stdout stays free for machine-readable output.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["TerminalView", "format_prediction", "format_status"]


def format_prediction(payload: Mapping[str, Any], k: int = 3) -> str:
    """``#41 wave 0.81 | clap 0.10 | ... | infer 4.1 ms total 27.9 ms | persons 3,7`` for one prediction."""
    top = " | ".join(f"{t['label']} {t['score']:.2f}" for t in payload["topk"][:k])
    lat = payload["latency_ms"]
    persons = ",".join(str(p) for p in payload["persons"]) or "-"
    return (f"#{payload['seq']} {top} | infer {lat['inference']:.1f} ms total {lat['total']:.1f} ms "
            f"| persons {persons}")


def format_status(payload: Mapping[str, Any]) -> str:
    """``29.9 fps, dropped 0, persons 2, queue 0, onnxruntime`` (+ the last error) for one status."""
    text = (f"{payload['input_fps']:.1f} fps, dropped {payload['frames_dropped']}, persons {payload['persons_seen']}, "
            f"queue {payload['queue_depth']}, {payload['backend']}")
    if payload["errors"]:
        text += f", error: {payload['errors'][-1]}"
    return text


class TerminalView:
    """Show the newest prediction and status.

    Args:
        stream: where to write (stderr by default).
        period_s: least time between two writes.
        k: classes shown.
        live: redraw one line in place (default: when ``stream`` is a TTY); else write one line per update.
    """

    def __init__(self, stream: TextIO | None = None, period_s: float = 0.2, k: int = 3,
                 live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.period_s, self.k = period_s, k
        self.live = self.stream.isatty() if live is None else live
        self._pred: Mapping[str, Any] | None = None
        self._status: Mapping[str, Any] | None = None
        self._last = 0.0
        self._lock = threading.Lock()
        self._width = 0

    def on_frame(self, frame: Any, tracked: Any) -> None:
        pass

    def on_prediction(self, payload: Mapping[str, Any]) -> None:
        self._pred = payload
        self._maybe_draw()

    def on_status(self, payload: Mapping[str, Any]) -> None:
        self._status = payload
        self._maybe_draw()

    def line(self) -> str:
        """The text that would be shown now."""
        parts = []
        if self._status is not None:
            parts.append(format_status(self._status))
        if self._pred is not None:
            parts.append(format_prediction(self._pred, self.k))
        return " || ".join(parts) if parts else "waiting for frames..."

    def _maybe_draw(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.period_s:
                return
            self._last = now
            text = self.line()
            if self.live:
                pad = max(self._width - len(text), 0)
                self.stream.write("\r" + text + " " * pad)
                self._width = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the live line with a newline."""
        with self._lock:
            if self.live and self._width:
                self.stream.write("\n")
                self.stream.flush()
                self._width = 0
