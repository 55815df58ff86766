"""Soak: a pose process restarted many times (frame indices start again at 0 while the clock goes on) must not make
predictions whose window runs from a frame of the old run to one of the new (first_frame > last_frame: subscribers
refuse them as malformed)."""
from __future__ import annotations

import numpy as np

from sttr.realtime.frame import SkeletonFrame
from sttr.realtime.messages import validate_prediction
from sttr.realtime.pipeline import LiveConfig, ModelSpec, Pipeline
from sttr.realtime.service import InferenceService, ServiceConfig
from sttr.realtime.tracker import PersonTracker

SPEC = ModelSpec(channels=3, frames=16, joints=20, persons=1, layout="kinect20", fps=None, labels=("a", "b"))


class _Engine:
    def run(self, x):
        return np.zeros((x.shape[0], 2), np.float32)

    def probabilities(self, logits):
        return np.full(logits.shape, 0.5)


def _restarting_frames(restarts: int, run_frames: int):
    """Frames of a source restarted `restarts` times: indices from 0 each run, timestamps going on at 30 fps."""
    rng = np.random.default_rng(0)
    t = 0.0
    for _ in range(restarts):
        for index in range(run_frames):
            t += 1000.0 / 30
            yield SkeletonFrame(layout="kinect20", timestamp_ms=t, index=index,
                                joints=rng.normal(size=(1, 20, 3)).astype(np.float32), scores=np.ones((1, 20)))


def _check(payloads):
    assert payloads
    for p in payloads:
        validate_prediction(p)  # raises on first_frame > last_frame
        assert p["window"]["first_frame"] <= p["window"]["last_frame"]


def test_pipeline_windows_never_span_a_restart():
    payloads = []

    class Pub:
        def send(self, topic, payload):
            if str(topic).startswith("pred") or (isinstance(topic, bytes) and topic.startswith(b"pred")):
                payloads.append(payload)
            return True

    pipe = Pipeline(_restarting_frames(30, 40), _Engine(), SPEC, LiveConfig(stride=4, realtime=False,
                                                                             threaded=False),
                    publisher=Pub(), tracker=PersonTracker(max_persons=1))
    stats = pipe.run()
    _check(payloads)
    assert stats.predictions == len(payloads) > 30 * 4


def test_service_windows_never_span_a_restart():
    payloads = []
    service = InferenceService(source=None, engine=_Engine(), spec=SPEC, config=ServiceConfig(stride=4),
                               on_prediction=payloads.append)
    batches = []
    for frame in _restarting_frames(30, 40):
        service.on_frame("cam0", frame)
        stream = service.streams["cam0"]
        if stream.pending is not None:  # run the batcher's work inline
            buf, window = stream.pending
            stream.pending = None
            service._run_batch([(stream, buf, window)])
            stream.free.append(buf)
            batches.append(1)
    _check(payloads)
    assert len(payloads) == len(batches) > 30 * 4
