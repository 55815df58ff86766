"""The live benchmark's machinery: a subscriber in another process, end-to-end latency, the report table."""
from __future__ import annotations

import math

from sttr.realtime.live_bench import _paced, format_results, run_case
from sttr.realtime.pipeline import ModelSpec

from ._fakes import FakeEngine, synthetic_frames

SPEC = ModelSpec(channels=3, frames=16, joints=25, persons=2, layout="ntu25", fps=30.0, labels=("a", "b", "c"),
                 name="fake", backend="fake")


def test_run_case_measures_end_to_end_through_a_subscriber_process():
    frames = list(synthetic_frames(48))
    result = run_case(lambda: (_paced(frames, None), 30.0), FakeEngine(), SPEC, mode="fast", stride=8)
    # windows due at frames 16, 24, 32, 40, 48; every one published and received, in order
    assert result["frames"] == 48 and result["windows"] == result["predictions"] == 5
    assert result["received"] == 5 and result["in_order"] and result["frames_dropped"] == 0
    e2e = result["end_to_end_ms"]
    assert e2e["count"] == 5 and 0 < e2e["p50"] <= e2e["p99"] < 10_000
    assert result["stages_ms"]["send_cpu"]["count"] == 5
    table = format_results({"results": [{"backend": "fake", "pose": "cached", **result}]})
    assert "e2e p99" in table and "fake" in table and "end_to_end" in table


def test_run_case_realtime_uses_capture_timestamps():
    # 48 frames paced at 60 fps (0.8 s): a 16-frame window at 30 fps needs 0.5 s of frames, so windows are due at
    # frames 32, 40 and 48 (24 too if the machine stretched the pacing by a third), resampled from 60 fps
    frames = list(synthetic_frames(48))
    result = run_case(lambda: (_paced(frames, 60.0), 30.0), FakeEngine(), SPEC, mode="realtime", stride=8)
    assert result["received"] == result["predictions"] in (3, 4)
    e2e = result["end_to_end_ms"]
    assert not math.isnan(e2e["p50"]) and 0 < e2e["p50"] < 10_000


def test_looped_cached_frames_are_one_stream():
    frames = list(synthetic_frames(10))
    out = list(_paced(frames, None, loops=3))
    assert [f.index for f in out] == list(range(30))
    assert all(b.timestamp_ms >= a.timestamp_ms for a, b in zip(out, out[1:]))
    assert all(a.joints is b.joints for a, b in zip(out, out[10:]))  # the same skeletons, replayed
    result = run_case(lambda: (_paced(frames * 2, None, loops=2), 30.0), FakeEngine(), SPEC, mode="fast", stride=8)
    assert result["frames"] == 40 and result["predictions"] == 4 and result["frames_dropped"] == 0
