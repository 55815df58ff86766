"""sttr bench live (sttr.realtime.live_bench): settings checked before the first run, the report's settings and
versions, the x-video ratio and a run that completed no window."""
from __future__ import annotations

import math

import pytest

from sttr.realtime import live_bench
from sttr.realtime.live_bench import format_results, run_case, run_live_bench
from sttr.realtime.pipeline import ModelSpec

from .realtime._fakes import FakeEngine, synthetic_frames

SPEC = ModelSpec(channels=3, frames=16, joints=25, persons=2, layout="ntu25", fps=30.0, labels=("a", "b", "c"),
                 name="fake", backend="fake")


@pytest.fixture
def no_runs(monkeypatch):
    def run_all(*args):
        raise AssertionError("a run started before the settings were checked")
    monkeypatch.setattr(live_bench, "_run_all", run_all)


@pytest.mark.parametrize("kwargs, message", [
    ({"capture_backlog": 0}, "capture_backlog must be >= 1"),  # used only by the MediaPipe runs: found late before
    ({"pose_workers": 0}, "pose_workers must be >= 1"),
    ({"pose_width": -5}, "pose_width must be >= 0"),
    ({"stride": 0}, "stride must be >= 1"),
    ({"max_frames": 0}, "max_frames must be >= 1"),
    ({"modes": ()}, "modes must be some of"),
    ({"modes": ("slow",)}, "modes must be some of"),
    ({"pose": "live"}, "pose must be one of"),
    ({"backends": ()}, "no backend"),
])
def test_bad_settings_are_refused_before_any_run(kwargs, message, no_runs):
    with pytest.raises(ValueError, match=message):
        run_live_bench("v.mp4", "bundle", **{"pose": "cached", **kwargs})


def test_report_records_settings_and_versions(monkeypatch):
    monkeypatch.setattr(live_bench, "_run_all", lambda results, *args: None)
    report = run_live_bench("v.mp4", "b", modes=("fast",), pose="cached", max_frames=50, pose_width=960)
    assert report["modes"] == ["fast"] and report["pose"] == "cached" and report["max_frames"] == 50
    assert report["pose_width"] == 960 and report["precision"] == "fp32" and report["stride"] == 8
    machine = report["machine"]
    assert machine["cpus"] >= 1 and "cpu" in machine and machine["versions"]["numpy"]
    assert {"onnxruntime", "mediapipe", "pyzmq"} <= set(machine["versions"])


def test_x_video_is_sustained_fps_over_the_video_fps_and_short_runs_say_why_no_window():
    frames = list(synthetic_frames(24))  # the model takes 16 frames: windows at 16 and 24
    done = run_case(lambda: (live_bench._paced(frames, None), 30.0), FakeEngine(), SPEC, mode="fast", stride=8)
    assert done["video_fps"] == 30.0 and done["window"] == 16 and done["model_fps"] == 30.0
    short = {**done, "frames": 10, "windows": 0, "sustained_fps": 45.0}
    table = format_results({"results": [{"backend": "fake", "pose": "cached", **short}]})
    line = next(l for l in table.splitlines() if l.startswith("fake"))
    assert line.split()[3:5] == ["45.0", "1.50"]  # fps, x video = 45 / 30
    assert "no window was complete in fake cached fast: the model takes 16 frames (0.5 s at the model's 30 fps)" \
        in table
    unknown = format_results({"results": [{"backend": "fake", "pose": "cached", **{**done, "video_fps": None}}]})
    assert math.isnan(live_bench._x_video({**done, "video_fps": None})) and "nan" in unknown
