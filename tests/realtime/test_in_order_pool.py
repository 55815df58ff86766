"""InOrderPool: items to free workers, results in order, bounded, errors where they belong."""
from __future__ import annotations

import random
import threading
import time

import pytest

from sttr.realtime.sources.in_order_pool import InOrderPool

TIMEOUT_S = 10.0


def _record(worker: list[int], item: int) -> int:
    time.sleep(random.uniform(0, 0.004))
    worker.append(item)
    return item * item


@pytest.mark.parametrize("in_turn", [False, True])
def test_results_come_in_item_order_and_each_worker_sees_its_items_in_order(in_turn):
    random.seed(0)
    workers = [[], [], []]
    pool = InOrderPool(workers, _record, in_turn=in_turn)
    got = list(pool.run(range(60)))
    pool.close()
    assert got == [(i, i * i) for i in range(60)]
    assert sorted(i for w in workers for i in w) == list(range(60))
    assert all(w == sorted(w) for w in workers)
    assert sum(pool.per_worker) == pool.taken == 60
    if in_turn:
        assert all(item % 3 == k for k, w in enumerate(workers) for item in w)


def test_a_slow_item_does_not_hold_up_the_other_workers():
    # item 0 blocks worker 0; the items after it must still be taken and done by worker 1 (handed on in order
    # once item 0 is done). This is what keeps a newest-wins capture from dropping frames behind one slow estimate.
    release, done = threading.Event(), []
    two_done = threading.Event()

    def work(name: str, item: int) -> int:
        if item == 0:
            assert release.wait(TIMEOUT_S)
        done.append((name, item))
        if len(done) == 3:
            two_done.set()
        return item

    pool = InOrderPool(["a", "b"], work)  # max_ahead 2: items 0..3 may be out while 0 is unfinished
    results = pool.run(range(6))
    consumer = threading.Thread(target=lambda: collected.extend(results))
    collected: list = []
    consumer.start()
    assert two_done.wait(TIMEOUT_S), f"worker b did not go on while item 0 was slow: {done}"
    assert done == [("b", 1), ("b", 2), ("b", 3)] and collected == []  # nothing handed on before item 0
    assert pool.taken == 4  # bounded: 2 workers + max_ahead 2
    release.set()
    consumer.join(TIMEOUT_S)
    assert [item for item, _ in collected] == list(range(6))
    pool.close()


def test_in_turn_waits_for_the_items_own_worker():
    release, done = threading.Event(), []

    def work(name: str, item: int) -> int:
        if item == 0:
            assert release.wait(TIMEOUT_S)
        done.append(item)
        return item

    pool = InOrderPool(["a", "b"], work, in_turn=True)
    collected: list = []
    consumer = threading.Thread(target=lambda: collected.extend(pool.run(range(4))))
    consumer.start()
    time.sleep(0.3)
    assert done == [1] and pool.per_worker == [1, 1]  # item 2 is not even taken: it waits for worker a
    release.set()
    consumer.join(TIMEOUT_S)
    assert [item for item, _ in collected] == [0, 1, 2, 3]
    pool.close()


def test_a_consumer_that_stops_reading_stops_the_taking():
    pool = InOrderPool([0, 1], lambda w, i: i, max_ahead=1)
    results = pool.run(iter(range(1000)))
    assert next(results) == (0, 0)
    time.sleep(0.3)
    assert pool.taken <= 1 + 2 + 1  # the consumed one, two workers, one ahead
    results.close()
    pool.feeder.join(TIMEOUT_S)
    assert not pool.feeder.is_alive()
    pool.close()


def test_source_errors_come_after_the_items_before_them_and_work_errors_at_their_turn():
    def source():
        yield from range(3)
        raise OSError("camera 0 lost")

    pool = InOrderPool([0, 1], lambda w, i: i)
    got = []
    with pytest.raises(OSError, match="camera 0 lost"):
        for item, _ in pool.run(source()):
            got.append(item)
    assert got == [0, 1, 2]
    pool.close()

    def fails_on_two(w: int, i: int) -> int:
        if i == 2:
            raise ValueError("bad image 2")
        return i

    pool = InOrderPool([0, 1], fails_on_two)
    got = []
    with pytest.raises(ValueError, match="bad image 2"):
        for item, _ in pool.run(range(5)):
            got.append(item)
    assert got == [0, 1]
    pool.close()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one worker"):
        InOrderPool([], lambda w, i: i)
    with pytest.raises(ValueError, match="max_ahead"):
        InOrderPool([0], lambda w, i: i, max_ahead=-1)
