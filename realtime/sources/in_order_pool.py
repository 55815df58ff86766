"""Run items on N single-thread workers, each item on whichever worker is free, results in the items' order.

Made for N pose landmarkers sharing a newest-frame-wins capture:

* the next item is taken from the source only once a worker is free, so a frame never ages in a queue here (the
  capture keeps replacing it with a newer one until somebody can estimate it);
* a worker is free again as soon as *its* item is done, not when that item's result has been handed on: one slow
  frame on one worker must not hold up the others (results handed on in order would otherwise tie every worker to
  the slowest frame in flight: on the two-person video a single 100 ms frame cost a dropped frame);
* results are handed on in item order; at most `max_ahead` finished results wait behind a slow one, after which
  taking new items waits too (a consumer that stops reading cannot make anything grow without bound).

Each worker runs its items one after another in the order it got them, so a worker's items are in source order
(what MediaPipe's video mode needs from each landmarker). `in_turn=True` gives item j to worker j mod N instead
(waiting for that one): the same items then always meet the same workers, for offline runs that must repeat exactly.
"""
from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, Iterable, Iterator, Sequence, TypeVar

__all__ = ["InOrderPool"]

W = TypeVar("W")  # a worker's own state (a landmarker)
I = TypeVar("I")  # noqa: E741  an item (a captured frame)
R = TypeVar("R")  # a result

_DONE = object()


class InOrderPool(Generic[W, I, R]):
    """`run(items)` yields `(item, fn(worker, item))` in item order, items spread over `workers` as they free up.
    One `run` per pool: stopping it (the consumer closing the generator) stops the pool.

    Args:
        workers: One state per worker (e.g. one landmarker each); worker k runs `fn(workers[k], item)` on its own
            thread.
        fn: The work.
        max_ahead: How many items may be taken beyond those being worked on while the oldest is unfinished or
            not yet consumed (default: one per worker).
        in_turn: Item j to worker j mod N (repeatable) instead of to whichever is free (never held up by a slow
            item on another worker).
        name: Thread name prefix.
    """

    def __init__(self, workers: Sequence[W], fn: Callable[[W, I], R], *, max_ahead: int | None = None,
                 in_turn: bool = False, name: str = "worker") -> None:
        if not workers:
            raise ValueError("an InOrderPool needs at least one worker")
        self.workers = list(workers)
        self.fn = fn
        self.in_turn = in_turn
        self.max_ahead = len(self.workers) if max_ahead is None else int(max_ahead)
        if self.max_ahead < 0:
            raise ValueError(f"max_ahead must be >= 0, got {max_ahead}")
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"{name}{k}") for k in range(len(self.workers))]
        self._stop = threading.Event()
        self._changed = threading.Condition()  # a worker became free, or stop
        self._feeder: threading.Thread | None = None
        self.per_worker = [0] * len(self.workers)  # items given to each worker
        self._last_worker = len(self.workers) - 1

    def run(self, items: Iterable[I]) -> Iterator[tuple[I, R]]:
        """Yield `(item, result)` in the order of `items`. A source error is raised here after the items taken
        before it; an error in `fn` is raised when its item's turn comes."""
        n = len(self.workers)
        free = set(range(n))
        changed = self._changed
        taken_not_consumed = threading.Semaphore(n + self.max_ahead)
        out: queue.Queue[object] = queue.Queue()

        def give_back(k: int) -> None:
            with changed:
                free.add(k)
                changed.notify_all()

        def next_worker(j: int) -> int | None:
            """The worker for item j once it is free; None when stopped."""
            # round-robin among the free ones, so that idle workers take turns
            order = [j % n] if self.in_turn else [(self._last_worker + 1 + d) % n for d in range(n)]
            with changed:
                changed.wait_for(lambda: self._stop.is_set() or any(k in free for k in order))
                if self._stop.is_set():
                    return None
                k = next(k for k in order if k in free)
                free.discard(k)
                return k

        def feed() -> None:
            source = iter(items)
            try:
                for j in itertools.count():
                    taken_not_consumed.acquire()  # the consumer is not too far behind
                    k = next_worker(j)  # a free worker before the item: the item is the newest there is now
                    if k is None or (item := next(source, _DONE)) is _DONE:
                        return
                    self.per_worker[k] += 1
                    self._last_worker = k
                    future = self._threads[k].submit(self.fn, self.workers[k], item)
                    future.add_done_callback(lambda _, k=k: give_back(k))
                    out.put((future, item))
            except BaseException as exc:  # a lost camera, a read error: raised in the consumer's thread
                out.put(exc)
            finally:
                out.put(_DONE)

        self._feeder = threading.Thread(target=feed, name="in-order-feeder", daemon=True)
        self._feeder.start()
        try:
            while (entry := out.get()) is not _DONE:
                if isinstance(entry, BaseException):
                    raise entry
                future, item = entry  # type: ignore[misc]
                result = future.result()
                yield item, result
                taken_not_consumed.release()
        finally:
            self._stop.set()
            taken_not_consumed.release()  # a feeder waiting on either gate sees the stop
            with changed:
                changed.notify_all()

    @property
    def taken(self) -> int:
        """Items taken from the source so far."""
        return sum(self.per_worker)

    @property
    def feeder(self) -> threading.Thread | None:
        return self._feeder

    def close(self) -> None:
        """Stop taking items and wait for the work in progress (not for work queued behind it)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        for pool in self._threads:
            pool.shutdown(wait=True, cancel_futures=True)
