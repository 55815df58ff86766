"""Clean stops shared by the long-running commands (`sttr-live`, its pose-only mode, `sttr serve`).

`stop_signals` routes Ctrl-C and SIGTERM to a handler for as long as a command runs, and puts the previous handlers
back; `stop_handler` is the policy all of them use (stop the loop cleanly; abort on a second signal or when the loop
is blocked where it would never return); `close_all` closes what a command opened, going on past a part that fails
to close.
"""
from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["stop_signals", "stop_handler", "close_all", "deliver_last_messages", "run_until_stopped"]

# how long the normal end of a run waits for its last queued messages to reach subscribers
DELIVER_LAST_S = 1.0

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


def stop_handler(get_loop: Callable[[], Any]) -> Callable[[int], None]:
    """The signal policy for a `SourceLoop` (`get_loop()` returns it, or None while there is none yet).

    The first signal asks the loop to stop after its current frame (or poll). It aborts at once (KeyboardInterrupt)
    when there is no loop yet, on a second signal, or when the loop waits where it would never return: inside its
    source (a camera or a socket that delivers nothing) or before its run started (`running` False, e.g. waiting for
    a subscriber).
    """
    def handler(signum: int) -> None:
        loop = get_loop()
        if loop is None or loop.stopping:
            raise KeyboardInterrupt  # a second signal: abort now
        loop.stop()
        if loop.waiting_for_source or not getattr(loop, "running", True):
            raise KeyboardInterrupt
        logger.info("signal %d: stopping after the current frame (again to abort)", signum)
    return handler


def deliver_last_messages(publisher: Any) -> None:
    """Close a publisher at the normal end of a run, giving its queued messages `DELIVER_LAST_S` to go out (a file
    that ends would otherwise lose its last frames or predictions to the socket's immediate close)."""
    if publisher is not None:
        publisher.close(linger_s=DELIVER_LAST_S)


def run_until_stopped(run: Callable[[], Any], get_loop: Callable[[], Any], publisher: Any,
                      close: Callable[[], None]) -> Any:
    """A long-running command's run: `run()` under the `stop_handler` policy for `get_loop()`; at its normal end the
    publisher's last messages are delivered; `close()` always follows. Returns what `run()` returned, or after an
    abort the loop's statistics so far (None when there was no loop yet)."""
    try:
        with stop_signals(stop_handler(get_loop)):
            result = run()
        deliver_last_messages(publisher)
        return result
    except KeyboardInterrupt:
        loop = get_loop()
        return loop.stats if loop is not None else None
    finally:
        close()


def close_all(parts: Iterable[Any]) -> None:
    """`close()` every part that is not None, in order; a failure is logged and the others are still closed."""
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception:  # closing must go on with the other parts
            logger.exception("closing %s failed", type(part).__name__)
