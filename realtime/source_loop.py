"""The stop protocol of the long-running loops (live pipeline, skeleton publisher, inference service).

`stop()` is thread- and signal-safe; `stopping` tells whether it was asked. `frames(source)` yields a source's frames
until it ends or `stop()` is called, with `waiting_for_source` set while it is blocked inside the source: a signal
handler that sees it may interrupt (a camera or a socket that delivers nothing would never return), while a frame
being processed is left to finish.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["SourceLoop"]


class SourceLoop:
    """Base of the classes that run until their source ends or they are stopped."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.waiting_for_source = False

    def stop(self) -> None:
        """Ask the run to end after the current frame or poll (thread- and signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def frames(self, source: Iterable[Any]) -> Iterator[Any]:
        """The source's frames until it ends or ``stop()``; ``waiting_for_source`` is True only inside the source."""
        it = iter(source)
        while not self._stop.is_set():
            self.waiting_for_source = True
            try:
                frame = next(it)
            except StopIteration:
                return
            finally:
                self.waiting_for_source = False
            yield frame
