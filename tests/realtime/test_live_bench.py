"""The live benchmark's machinery: a subscriber in another process, end-to-end latency, the report table."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sttr.realtime import live_bench
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


def _state(pid: int) -> str:
    """A process's state letter from /proc ('Z' zombie), or '' once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_collector_never_outlives_a_killed_bench():
    # a bench process killed with SIGKILL cannot clean up: its collector must notice and exit on its own
    code = ("import sys, time\nfrom sttr.realtime.live_bench import _Collector\n"
            "c = _Collector('tcp://127.0.0.1:9')\nprint(c._proc.pid, flush=True)\ntime.sleep(60)\n")
    bench = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(bench.stdout.readline())
        assert _state(child) not in ("", "Z")
    finally:
        bench.kill()
        bench.wait()
    deadline = time.monotonic() + 10
    while _state(child) not in ("", "Z"):
        assert time.monotonic() < deadline, "the collector outlived the bench"
        time.sleep(0.1)


def test_an_interrupted_run_kills_its_collector(monkeypatch):
    made = []

    class Recorded(live_bench._Collector):
        def __init__(self, addr):
            super().__init__(addr)
            made.append(self)

    def interrupted_source():
        raise KeyboardInterrupt

    monkeypatch.setattr(live_bench, "_Collector", Recorded)
    with pytest.raises(KeyboardInterrupt):
        run_case(interrupted_source, FakeEngine(), SPEC, mode="fast", stride=8)
    assert len(made) == 1 and made[0]._proc.poll() is not None


def test_ctrl_c_stops_the_bench_and_prints_what_was_measured(monkeypatch, tmp_path, capsys):
    from sttr.realtime.cli import bench as bench_cli

    frames = list(synthetic_frames(32))
    done = run_case(lambda: (_paced(frames, None), 30.0), FakeEngine(), SPEC, mode="fast", stride=8)

    def first_run_then_ctrl_c(results, *args):
        results.append({"backend": "fake", "precision": "fp32", "pose": "cached", **done})
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(20)  # the second run: Ctrl-C must end it now, not after
        results.append("second run")

    monkeypatch.setattr(live_bench, "_run_all", first_run_then_ctrl_c)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    out = tmp_path / "bench.json"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a job started with & from a script
    try:
        t0 = time.monotonic()
        rc = bench_cli.main(["live", "--video", str(video), "--bundle", str(tmp_path), "--out", str(out)])
    finally:
        signal.signal(signal.SIGINT, previous)
    captured = capsys.readouterr()
    assert rc == 130 and time.monotonic() - t0 < 10
    assert "e2e p99" in captured.out and "interrupted; 1 finished run(s)" in captured.err
    report = json.loads(out.read_text())
    assert report["interrupted"] and len(report["results"]) == 1
