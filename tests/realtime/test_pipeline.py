"""The pipeline end to end: frames in, ordered well-formed predictions out to a real ZeroMQ subscriber."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from sttr.realtime import messages as msg
from sttr.realtime.client import Prediction, Status, Subscriber
from sttr.realtime.frame import SkeletonFrame
from sttr.realtime.pipeline import LiveConfig, ModelSpec, Pipeline, top_k
from sttr.realtime.publisher import Publisher
from sttr.realtime.session import LayoutAdapter

from ._fakes import FakeEngine, synthetic_frames

SPEC = ModelSpec(channels=3, frames=16, joints=25, persons=2, layout="ntu25", fps=30.0,
                 labels=("up", "down", "other"), name="fake", backend="fake")


def _collect(sub: Subscriber) -> list:
    return list(sub)  # until the subscriber's timeout passes without a message


def test_top_k_orders_best_first():
    probs = np.array([0.1, 0.5, 0.05, 0.35])
    assert top_k(probs, 3) == [(1, 0.5), (3, 0.35), (0, 0.1)]
    assert len(top_k(probs, 10)) == 4


def test_predictions_reach_a_subscriber_in_order(ctx):
    engine = FakeEngine()
    config = LiveConfig(stream="test", stride=4, top_k=2, realtime=False, status_period_s=0.0)
    with Publisher("inproc://pipeline-order", context=ctx) as pub, \
            Subscriber("inproc://pipeline-order", timeout_s=0.5, strict=True, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        stats = Pipeline(synthetic_frames(64), engine, SPEC, config, publisher=pub).run()
        received = _collect(sub)
    preds = [m for m in received if isinstance(m, Prediction)]
    statuses = [m for m in received if isinstance(m, Status)]
    # windows are due at frames 4, 8, ..., 64; the first 15 frames (T = 16 at 30 fps) are not enough yet
    assert stats.frames == 64 and stats.windows == len(preds) == engine.calls == 13
    assert [p.seq for p in preds] == list(range(13))
    assert all(p.topic == "pred.test" and p.stream == "test" and len(p.topk) == 2 for p in preds)
    assert [p.window.last_frame for p in preds] == list(range(15, 64, 4))
    assert all(p.window.last_frame - p.window.first_frame == 15 and p.window.frames == 16 for p in preds)
    assert all(p.persons == (0, 1) for p in preds)
    assert engine.shapes[0] == (1, 3, 16, 25, 2)
    for p in preds:
        lat = p.latency_ms
        assert lat["capture"] == 0.5 and lat["pose"] == 1.0
        assert 0 < lat["inference"] < 1000 and lat["buffer"] > 0
        assert lat["total"] >= lat["capture"] + lat["pose"] + lat["buffer"] + lat["inference"] - 1e-3
    assert statuses and statuses[-1].backend == "fake" and statuses[-1].persons_seen >= 0
    assert stats.latency_ms["send"]["count"] == 13


def test_frames_dropped_and_status(ctx):
    config = LiveConfig(stream="drops", stride=8, realtime=False, status_period_s=0.0)
    with Publisher("inproc://pipeline-drops", context=ctx) as pub, \
            Subscriber("inproc://pipeline-drops", topics="status.", timeout_s=0.5, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        stats = Pipeline(synthetic_frames(40, skip=(10, 11, 30)), FakeEngine(), SPEC, config, publisher=pub).run()
        statuses = _collect(sub)
    assert stats.frames == 37 and stats.frames_dropped == 3
    assert statuses[-1].frames_dropped == 3 and max(s.persons_seen for s in statuses) == 2
    assert all(s.queue_depth in (0, 1) for s in statuses)


def test_newest_window_wins_under_load():
    gate = threading.Event()
    engine = FakeEngine(gate=gate)
    config = LiveConfig(stride=1, realtime=True)
    pipe = Pipeline(synthetic_frames(60), engine, SPEC, config)
    released = []

    class Release:
        def on_frame(self, frame, tracked):
            if frame.index == 59:  # let the worker go only after every window was offered
                gate.set()
                released.append(frame.index)

        def on_prediction(self, payload):
            pass

        def on_status(self, payload):
            pass

    pipe.observers.append(Release())
    stats = pipe.run()
    assert released == [59]
    assert stats.windows == 45 and stats.windows_dropped > 0
    assert stats.predictions == engine.calls == stats.windows - stats.windows_dropped
    assert stats.predictions <= 3  # the one running when load began, maybe one more, and the newest


def test_smoothing_averages_probabilities():
    spec = SPEC
    outs = {}
    for smoothing in (0.0, 0.9):
        got = []

        class Keep:
            def on_frame(self, frame, tracked):
                pass

            def on_prediction(self, payload):
                got.append(payload["topk"][0]["score"])

            def on_status(self, payload):
                pass

        cfg = LiveConfig(stride=4, realtime=False, threaded=False, smoothing=smoothing)
        Pipeline(synthetic_frames(64), FakeEngine(), spec, cfg, observers=[Keep()]).run()
        outs[smoothing] = got
    assert len(outs[0.0]) == len(outs[0.9]) > 3
    assert outs[0.0][0] == pytest.approx(outs[0.9][0])  # the first window has no history
    assert np.std(np.diff(outs[0.9])) < np.std(np.diff(outs[0.0]))


def test_engine_errors_show_up_in_status(ctx):
    class Broken(FakeEngine):
        def run(self, windows):
            raise RuntimeError("model file corrupt")

    config = LiveConfig(stream="err", stride=8, realtime=False, status_period_s=0.0)
    with Publisher("inproc://pipeline-err", context=ctx) as pub, \
            Subscriber("inproc://pipeline-err", timeout_s=0.5, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        stats = Pipeline(synthetic_frames(40), Broken(), SPEC, config, publisher=pub).run()
        received = _collect(sub)
    assert stats.errors == stats.windows > 0 and stats.predictions == 0
    errors = [e for m in received if isinstance(m, Status) for e in m.errors]
    assert any("model file corrupt" in e for e in errors)


def test_wrong_joint_count_is_a_clear_error():
    spec = ModelSpec(channels=3, frames=8, joints=20, persons=2, layout="kinect20", fps=30.0, labels=("a",))
    pipe = Pipeline(synthetic_frames(4), FakeEngine(), spec, LiveConfig(threaded=False))
    with pytest.raises(ValueError, match="25 joints.*expects 20"):
        pipe.run()


def test_bad_frames_from_another_program_are_skipped(caplog):
    spec = ModelSpec(channels=3, frames=8, joints=18, persons=1, layout="openpose18", fps=30.0, labels=("a", "b"),
                     channel_names=("x", "y", "score"))

    def frames():
        for i in range(40):
            joints, layout = np.full((1, 18, 2), 0.5, np.float32), "openpose18"
            if i == 10:
                layout = "nosuchlayout"  # KeyError in the layout adapter
            if i == 11:
                joints = np.full((1, 18, 3), 0.5, np.float32)  # 3-D joints for a 2-D layout
            yield SkeletonFrame(layout, i * 1000 / 30, i, joints, np.ones((1, 18), np.float32))

    config = LiveConfig(stride=4, realtime=False, threaded=False, skip_bad_frames=True)
    stats = Pipeline(frames(), FakeEngine(num_classes=2), spec, config, adapter=LayoutAdapter("openpose18")).run()
    assert stats.frames == 40 and stats.bad_frames == 2 and stats.errors == 2 and stats.predictions > 3
    assert "frame 10 skipped: unknown skeleton layout 'nosuchlayout'" in caplog.text  # not a quoted KeyError
    with pytest.raises(KeyError, match="nosuchlayout"):  # our own sources: the first mismatch ends the run
        Pipeline(frames(), FakeEngine(num_classes=2), spec, LiveConfig(threaded=False),
                 adapter=LayoutAdapter("openpose18")).run()


def test_score_channel_is_filled_from_scores():
    spec = ModelSpec(channels=3, frames=4, joints=25, persons=1, layout="openpose18", fps=None, labels=("a", "b"),
                     channel_names=("x", "y", "score"))
    seen = []
    engine = FakeEngine(num_classes=2)
    engine.run = lambda w, _run=engine.run: (seen.append(w.copy()), _run(w))[1]
    frames = list(synthetic_frames(4, persons=1))
    for f in frames:
        f.scores[:] = 0.25
    Pipeline(iter(frames), engine, spec, LiveConfig(stride=4, threaded=False)).run()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0][0, 2], 0.25)  # channel 2 = score
    np.testing.assert_allclose(seen[0][0, 0, -1, :, 0], frames[-1].joints[0, :, 0])


def test_messages_validate():
    # a payload straight from the pipeline's builder must pass the validator used by subscribers
    got = []

    class Keep:
        def on_frame(self, frame, tracked):
            pass

        def on_prediction(self, payload):
            got.append(payload)

        def on_status(self, payload):
            got.append(payload)

    Pipeline(synthetic_frames(32), FakeEngine(), SPEC, LiveConfig(stride=8, threaded=False, status_period_s=0.0),
             observers=[Keep()]).run()
    assert got and all(msg.validate(p) for p in got)


# ---------------------------------------------------------------------- real data, real engine
from ._bundle import LABELS, WINDOW, nano_bundle  # noqa: E402,F401  (session fixture)


def _run_real(source, bundle, ctx, stream, realtime=False, stride=8, max_frames=None, index_fps=None):
    from sttr.realtime.session import LayoutAdapter, open_model
    from sttr.realtime.tracker import PersonTracker

    engine, spec = open_model(bundle, backend="onnxruntime")
    config = LiveConfig(stream=stream, stride=stride, realtime=realtime, max_frames=max_frames, status_period_s=0.5,
                        index_fps=index_fps)
    with Publisher("tcp://127.0.0.1:*", context=ctx) as pub, \
            Subscriber(pub.addr, timeout_s=1.0, strict=True, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        pipe = Pipeline(source, engine, spec, config, publisher=pub, adapter=LayoutAdapter(spec.layout),
                        tracker=PersonTracker(max_persons=spec.persons))
        stats = pipe.run()
        received = _collect(sub)
    return stats, spec, received


def _check_predictions(preds, spec, stride):
    assert [p.seq for p in preds] == list(range(len(preds)))
    lasts = [p.window.last_frame for p in preds]
    assert lasts == sorted(lasts) and all(b - a >= stride for a, b in zip(lasts, lasts[1:]))
    for p in preds:
        assert p.backend == "onnxruntime" and p.window.frames == spec.frames and p.window.fps == 30.0
        assert {t.label for t in p.topk} <= set(LABELS) and len(p.topk) == len(LABELS)
        assert sum(t.score for t in p.topk) == pytest.approx(1.0, abs=1e-4)
        lat = p.latency_ms
        assert 0 < lat["inference"] < 5000 and 0 < lat["buffer"] < 5000 and lat["publish"] < 100
        assert lat["total"] >= lat["inference"] + lat["buffer"] - 1e-3 and lat["total"] < 10000


@pytest.mark.slow
def test_real_openpose_sequence_with_real_engine(shared_data, nano_bundle, ctx):
    from sttr.realtime.sources import open_source

    folder = shared_data / "openpose" / "coco18_clean_and_jerk"
    source = open_source("openpose", folder, follow=False, image_size=(340, 256))
    try:
        stats, spec, received = _run_real(source, nano_bundle, ctx, "openpose")
    finally:
        source.close()
    preds = [m for m in received if isinstance(m, Prediction)]
    # 300 frames, T = 64: windows due at frame counts 64, 72, ..., 296 -> 30, none dropped in --fast mode
    assert stats.frames == 300 and stats.frames_dropped == 0 and stats.errors == 0
    assert len(preds) == stats.predictions == 30 and stats.windows_dropped == 0
    _check_predictions(preds, spec, stride=8)
    assert all(p.persons == (0,) for p in preds)  # one lifter, one stable track
    assert preds[0].window.first_frame == 0 and preds[0].window.last_frame == WINDOW - 1
    statuses = [m for m in received if isinstance(m, Status)]
    assert statuses and statuses[-1].frames_dropped == 0


@pytest.mark.slow
def test_real_video_with_mediapipe_and_real_engine(shared_data, nano_bundle, ctx):
    from sttr.realtime.session import open_live_source

    video = shared_data / "video" / "clean_and_jerk.mp4"
    pose_model = shared_data / "models" / "pose_landmarker_full.task"
    source = open_live_source("video", str(video), "openpose18", realtime=False, pose_model=str(pose_model))
    try:
        # a file read as fast as pose allows: media time from the frame index, as `sttr-live --fast` does
        stats, spec, received = _run_real(source, nano_bundle, ctx, "video", stride=8, max_frames=96,
                                          index_fps=source.fps)
    finally:
        source.close()
    preds = [m for m in received if isinstance(m, Prediction)]
    assert stats.frames == 96 and stats.frames_dropped == 0 and stats.errors == 0
    assert len(preds) == stats.predictions >= 4  # windows at 64, 72, 80, 88, 96 once a person is tracked
    _check_predictions(preds, spec, stride=8)
    assert all(p.latency_ms["pose"] > 1.0 and p.latency_ms["capture"] > 0 for p in preds)
    assert all(len(p.persons) >= 1 for p in preds)


def test_source_errors_reach_status_once():
    class Source:
        def __init__(self):
            self.errors = []

        def __iter__(self):
            for i, frame in enumerate(synthetic_frames(6)):
                if i == 2:
                    self.errors.append("file 2 malformed, skipped")
                yield frame

    got = []

    class Keep:
        def on_frame(self, frame, tracked):
            pass

        def on_prediction(self, payload):
            pass

        def on_status(self, payload):
            got.extend(payload["errors"])

    Pipeline(Source(), FakeEngine(), SPEC, LiveConfig(threaded=False, status_period_s=0.0), observers=[Keep()]).run()
    assert got == ["source: file 2 malformed, skipped"]
