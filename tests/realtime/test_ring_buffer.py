"""RingBuffer on a fake clock: wrap-around, gaps, fps resampling, no allocation per push."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sttr.realtime.ring_buffer import RingBuffer

M, V, C = 2, 3, 3


def _frame(value: float) -> np.ndarray:
    """A frame whose every entry is ``value`` (so the window shows which frame landed where)."""
    return np.full((M, V, C), value, dtype=np.float32)


def _fill(buf: RingBuffer, times_ms, values=None) -> None:
    values = times_ms if values is None else values
    for i, (t, v) in enumerate(zip(times_ms, values)):
        buf.push(_frame(v), t, index=i)


def test_window_layout_and_order_before_wrap():
    buf = RingBuffer(8, M, V, C)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(5, M, V, C)).astype(np.float32)
    for i, f in enumerate(frames):
        buf.push(f, 100.0 + i, index=i)
    win = buf.window(4)
    assert win.shape == (C, 4, V, M) and win.dtype == np.float32
    # window[c, t, v, m] == frames[1 + t, m, v, c]
    np.testing.assert_array_equal(win, frames[1:].transpose(3, 0, 2, 1))


def test_wrap_around_keeps_newest_in_order():
    buf = RingBuffer(4, M, V, C)
    _fill(buf, [float(t) for t in range(1, 11)])  # 10 pushes into 4 slots
    assert len(buf) == 4
    np.testing.assert_array_equal(buf.timestamps(), [7.0, 8.0, 9.0, 10.0])
    np.testing.assert_array_equal(buf.frame_indices(), [6, 7, 8, 9])
    win = buf.window(4)
    np.testing.assert_array_equal(win[0, :, 0, 0], [7.0, 8.0, 9.0, 10.0])
    assert buf.window_frames(4) == (6, 9, 7.0, 10.0)


def test_window_writes_into_given_output():
    buf = RingBuffer(6, M, V, C)
    _fill(buf, [10.0, 20.0, 30.0, 40.0])
    out = np.full((C, 3, V, M), -1.0, dtype=np.float32)
    res = buf.window(3, out=out)
    assert res is out
    np.testing.assert_array_equal(out[1, :, 2, 1], [20.0, 30.0, 40.0])
    with pytest.raises(ValueError, match="shape"):
        buf.window(3, out=np.zeros((C, 4, V, M), np.float32))


def test_resample_to_model_fps_from_faster_input():
    # 60 fps input (fake clock, 1000/60 ms apart), model at 30 fps: every other frame.
    buf = RingBuffer(32, M, V, C)
    times = [i * 1000.0 / 60.0 for i in range(20)]
    _fill(buf, times, values=list(range(20)))
    assert buf.ready(8, fps=30.0)
    win = buf.window(8, fps=30.0)
    np.testing.assert_allclose(win[0, :, 0, 0], [5, 7, 9, 11, 13, 15, 17, 19], atol=1e-4)


def test_resample_linear_between_frames_from_slower_input():
    # 15 fps input, model at 30 fps: samples half-way between frames are interpolated linearly.
    buf = RingBuffer(16, M, V, C)
    times = [i * 1000.0 / 15.0 for i in range(6)]
    _fill(buf, times, values=[0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    win = buf.window(5, fps=30.0)
    np.testing.assert_allclose(win[2, :, 1, 1], [6.0, 7.0, 8.0, 9.0, 10.0], atol=1e-4)
    nearest = buf.window(5, fps=30.0, interpolation="nearest")
    assert set(np.round(nearest[0, :, 0, 0]).tolist()) <= {6.0, 8.0, 10.0}


def test_resample_with_jitter_and_dropped_frame():
    # 30 fps with one frame missing (t=100 ms): the sample at 100 ms interpolates its neighbours.
    buf = RingBuffer(16, M, V, C)
    period = 1000.0 / 30.0
    times = [k * period for k in range(6) if k != 3]
    _fill(buf, times, values=[k for k in range(6) if k != 3])
    win = buf.window(6, fps=30.0)
    np.testing.assert_allclose(win[0, :, 0, 0], [0, 1, 2, 3, 4, 5], atol=1e-4)


def test_gap_longer_than_max_gap_holds_instead_of_interpolating():
    buf = RingBuffer(16, M, V, C, max_gap_ms=100.0)
    # frames at 0..100 ms, then a 1 s pause, then frames again
    times = [0.0, 50.0, 100.0, 1100.0, 1150.0]
    _fill(buf, times, values=[0.0, 0.0, 0.0, 10.0, 10.0])
    win = buf.window(8, fps=20.0)  # samples every 50 ms ending at 1150
    values = win[0, :, 0, 0]
    assert set(np.round(values, 4).tolist()) <= {0.0, 10.0}, values
    assert values[-1] == 10.0 and values[-2] == 10.0


def test_samples_before_first_frame_hold_first_frame():
    buf = RingBuffer(8, M, V, C)
    _fill(buf, [0.0, 33.0], values=[3.0, 4.0])
    assert not buf.ready(4, fps=30.0)
    win = buf.window(4, fps=30.0)
    np.testing.assert_allclose(win[0, :2, 0, 0], [3.0, 3.0])
    assert win[0, -1, 0, 0] == 4.0


def test_ready_counts_frames_without_fps():
    buf = RingBuffer(8, M, V, C)
    _fill(buf, [1.0, 2.0])
    assert not buf.ready(3)
    with pytest.raises(ValueError, match="needs 3 stored frames"):
        buf.window(3)
    buf.push(_frame(3.0), 3.0)
    assert buf.ready(3)


def test_bad_input_is_rejected():
    buf = RingBuffer(4, M, V, C)
    with pytest.raises(ValueError, match="empty"):
        buf.window(2, fps=30.0)
    with pytest.raises(ValueError, match="shape"):
        buf.push(np.zeros((M, V, C + 1), np.float32), 1.0)
    buf.push(_frame(0.0), 5.0)
    with pytest.raises(ValueError, match="increase strictly"):
        buf.push(_frame(0.0), 5.0)
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0, M, V, C)


def test_push_does_not_allocate():
    buf = RingBuffer(64, 2, 25, 3)
    frame = np.ones((2, 25, 3), np.float32)
    for i in range(100):  # warm up (first-call caches)
        buf.push(frame, float(i))
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(100, 5100):
            buf.push(frame, float(i), index=i)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2048, f"push grew memory by {after - before} bytes over 5000 frames"
    assert peak - before < 4096


def test_clear_forgets_frames():
    buf = RingBuffer(4, M, V, C)
    _fill(buf, [1.0, 2.0, 3.0])
    buf.clear()
    assert len(buf) == 0 and buf.last_timestamp_ms is None
    buf.push(_frame(1.0), 0.5)  # an earlier time is fine after clear
    assert len(buf) == 1
