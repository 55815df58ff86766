"""Non-finite or absurd joints never reach the model's output: they become missing joints (FrameGuard), and a model
that still gives NaN publishes nothing (pipeline and service alike)."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from sttr.realtime.frame import SkeletonFrame
from sttr.realtime.frame_guard import FrameGuard
from sttr.realtime.pipeline import LiveConfig, ModelSpec, Pipeline
from sttr.realtime.service import InferenceService, ServiceConfig
from sttr.realtime.session import LayoutAdapter
from sttr.realtime.sources.openpose_dir import OpenPoseDirSource

from ._fakes import FakeEngine

OP18 = ModelSpec(channels=3, frames=16, joints=18, persons=1, layout="openpose18", fps=30.0, labels=("a", "b", "c"),
                 name="fake", backend="fake", channel_names=("x", "y", "score"))


def _frame(i: int, value: float | None = None) -> SkeletonFrame:
    joints = np.full((1, 18, 2), 0.4 + 0.001 * i, np.float32)
    if value is not None:
        joints[0, 3:6] = value
    return SkeletonFrame("openpose18", i * 1000 / 30, i, joints, np.full((1, 18), 0.9, np.float32))


class Keep:
    def __init__(self) -> None:
        self.scores: list[float] = []

    def on_frame(self, frame, tracked):
        pass

    def on_prediction(self, payload):
        self.scores.extend(t["score"] for t in payload["topk"])

    def on_status(self, payload):
        pass


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e38])
def test_invalid_joints_become_missing_ones(value):
    guard = FrameGuard()
    fixed = guard(_frame(0, value))
    assert np.isfinite(fixed.joints).all() and (fixed.joints[0, 3:6] == 0).all()
    assert (fixed.scores[0, 3:6] == 0).all() and (fixed.scores[0, :3] == pytest.approx(0.9))
    good = _frame(1)
    assert guard(good) is good and guard.frames_fixed == 1


def test_nan_score_is_a_missing_joint():
    frame = _frame(0)
    frame.scores[0, 2] = np.nan
    fixed = FrameGuard()(frame)
    assert fixed.scores[0, 2] == 0 and fixed.joints[0, 2].tolist() == [0, 0]


@pytest.mark.parametrize("value", [math.nan, 1e38])
def test_pipeline_predictions_stay_finite(value):
    frames = [_frame(i, value if i in (20, 21) else None) for i in range(48)]
    keep = Keep()
    stats = Pipeline(iter(frames), FakeEngine(), OP18, LiveConfig(stride=4, realtime=False, threaded=False),
                     adapter=LayoutAdapter("openpose18"), observers=[keep]).run()
    assert stats.predictions == stats.windows > 5 and stats.errors == 0
    assert all(math.isfinite(s) for s in keep.scores)
    assert stats.invalid_joints_frames == 2


class NanEngine(FakeEngine):
    def run(self, windows):
        return super().run(windows) * np.nan


def test_pipeline_publishes_no_nan_scores_from_the_model():
    keep = Keep()
    stats = Pipeline(iter([_frame(i) for i in range(32)]), NanEngine(), OP18,
                     LiveConfig(stride=8, realtime=False, threaded=False), observers=[keep]).run()
    assert stats.windows > 0 and stats.predictions == 0 and stats.errors == stats.windows and not keep.scores


def _serve(service: InferenceService, frames: list[SkeletonFrame]) -> None:
    """Hand frames to the service one by one, each due window run before the next frame (no window replaced)."""
    service._worker.start()
    for frame in frames:
        service.on_frame("cam", frame)
        deadline = time.monotonic() + 5.0
        while any(s.pending is not None or len(s.free) < 3 for s in service.streams.values()):
            assert time.monotonic() < deadline, "the batcher did not take the window"
            time.sleep(0.001)
    service._close_worker()


def test_service_predictions_stay_finite_and_nan_output_is_dropped():
    published: list[dict] = []
    service = InferenceService(None, FakeEngine(), OP18, ServiceConfig(stride=4), on_prediction=published.append)
    _serve(service, [_frame(i, 1e38 if i == 20 else None) for i in range(40)])
    assert service.stats.predictions == service.stats.windows > 3 and service.stats.errors == 0
    assert all(math.isfinite(t["score"]) for p in published for t in p["topk"])
    assert service.stats.invalid_joints_frames == 1
    nan_service = InferenceService(None, NanEngine(), OP18, ServiceConfig(stride=4))
    _serve(nan_service, [_frame(i) for i in range(40)])
    assert nan_service.stats.predictions == 0 and nan_service.stats.errors == nan_service.stats.windows > 3


def test_an_openpose_file_of_nan_keypoints(tmp_path):
    for i in range(40):
        keypoints = [math.nan] * 54 if i == 20 else [170.0 + i, 128.0, 0.9] * 18
        (tmp_path / f"v_{i:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [
            {"person_id": [-1], "pose_keypoints_2d": keypoints}]}))
    keep = Keep()
    source = OpenPoseDirSource(tmp_path, follow=False, image_size=(340, 256))
    stats = Pipeline(source, FakeEngine(), OP18, LiveConfig(stride=4, realtime=False, threaded=False),
                     adapter=LayoutAdapter("openpose18"), observers=[keep]).run()
    assert stats.frames == 40 and stats.predictions > 3 and stats.errors == 0
    assert all(math.isfinite(s) for s in keep.scores)
