"""WindowScheduler: a window every stride frames; under load the newest window wins; block mode loses nothing."""
from __future__ import annotations

import threading

import pytest

from sttr.realtime.scheduler import WindowScheduler

SHAPE = (3, 4, 5, 2)


def _submit(sched: WindowScheduler, value: float) -> None:
    buf = sched.acquire()
    buf.fill(value)
    sched.submit(buf, value)


def test_stride_counts_frames():
    sched = WindowScheduler(SHAPE, lambda w, m: None, stride=3, threaded=False)
    due = [sched.frame_arrived() for _ in range(9)]
    assert due == [False, False, True] * 3
    with pytest.raises(ValueError, match="stride"):
        WindowScheduler(SHAPE, lambda w, m: None, stride=0)


def test_inline_runs_in_the_caller_and_reuses_buffers():
    seen, buffers = [], set()

    def handler(window, meta):
        seen.append((meta, float(window[0, 0, 0, 0]), threading.current_thread().name))
        buffers.add(id(window))

    sched = WindowScheduler(SHAPE, handler, threaded=False)
    for v in range(10):
        _submit(sched, float(v))
    assert [s[:2] for s in seen] == [(float(v), float(v)) for v in range(10)]
    assert {s[2] for s in seen} == {threading.current_thread().name}
    assert len(buffers) <= 3 and sched.dropped == 0


def test_latest_mode_drops_old_windows_under_load():
    release, started = threading.Event(), threading.Event()
    seen = []

    def slow_handler(window, meta):
        started.set()
        release.wait(5.0)
        seen.append((meta, float(window[0, 0, 0, 0])))

    sched = WindowScheduler(SHAPE, slow_handler, mode="latest").start()
    try:
        _submit(sched, 0.0)
        assert started.wait(5.0)  # the worker is stuck on window 0
        for v in range(1, 21):
            _submit(sched, float(v))
            assert sched.queue_depth <= 1
        release.set()
    finally:
        sched.close(drain=True)
    # window 0 ran, windows 1..19 were replaced before they started, the newest (20) ran, intact
    assert seen == [(0.0, 0.0), (20.0, 20.0)]
    assert sched.dropped == 19 and sched.completed == 2 and sched.submitted == 21


def test_block_mode_loses_nothing():
    seen = []
    gate = threading.Semaphore(0)

    def handler(window, meta):
        gate.acquire(timeout=5.0)
        seen.append(meta)

    sched = WindowScheduler(SHAPE, handler, mode="block").start()
    producer = threading.Thread(target=lambda: [_submit(sched, float(v)) for v in range(6)])
    producer.start()
    for _ in range(6):
        gate.release()
    producer.join(5.0)
    sched.close(drain=True)
    assert not producer.is_alive()
    assert seen == [float(v) for v in range(6)] and sched.dropped == 0


def test_handler_errors_are_counted_and_work_goes_on():
    seen = []

    def handler(window, meta):
        if meta == 1:
            raise RuntimeError("engine exploded")
        seen.append(meta)

    sched = WindowScheduler(SHAPE, handler, mode="block").start()
    for v in range(3):
        _submit(sched, v)
    sched.close(drain=True)
    assert seen == [0, 2]
    assert sched.errors == 1 and "exploded" in str(sched.last_error)


def test_idle_callback_runs_when_no_window_comes():
    ticked = threading.Event()
    sched = WindowScheduler(SHAPE, lambda w, m: None, on_idle=ticked.set, idle_period_s=0.01).start()
    try:
        assert ticked.wait(5.0)
    finally:
        sched.close()


def test_submit_after_close_is_an_error():
    sched = WindowScheduler(SHAPE, lambda w, m: None).start()
    buf = sched.acquire()
    sched.close()
    with pytest.raises(RuntimeError, match="closed"):
        sched.submit(buf)
