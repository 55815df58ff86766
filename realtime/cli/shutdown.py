"""Clean stops shared by the long-running commands (`sttr-live`, its pose-only mode, `sttr serve`).

`stop_signals` routes Ctrl-C and SIGTERM to the command's own handler for as long as it runs, and puts the previous
handlers back; `close_all` closes what a command opened, going on past a part that fails to close.
"""
from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["stop_signals", "close_all"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """Call `handler(signum)` on SIGINT and SIGTERM inside the block (it may raise KeyboardInterrupt to abort)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: handler(signum))
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def close_all(parts: Iterable[Any]) -> None:
    """`close()` every part that is not None, in order; a failure is logged and the others are still closed."""
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception:  # closing must go on with the other parts
            logger.exception("closing %s failed", type(part).__name__)
