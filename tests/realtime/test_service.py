"""The multi-stream inference service: real recordings as several ZeroMQ skeleton streams in, one batched engine call
per round, per-stream predictions (own sequence numbers) and status out; bad input counted, silent streams dropped."""
from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import numpy as np
import pytest

zmq = pytest.importorskip("zmq")

from sttr.realtime.client import Prediction, Status, Subscriber  # noqa: E402
from sttr.realtime.pipeline import LiveConfig, ModelSpec, Pipeline  # noqa: E402
from sttr.realtime.publisher import Publisher  # noqa: E402
from sttr.realtime.service import InferenceService, ServiceConfig  # noqa: E402
from sttr.realtime.session import LayoutAdapter, open_model  # noqa: E402
from sttr.realtime.skeleton_publisher import SkeletonPublisher  # noqa: E402
from sttr.realtime.sources.openpose_dir import OpenPoseDirSource  # noqa: E402
from sttr.realtime.sources.replay import ReplaySource  # noqa: E402
from sttr.realtime.sources.zmq_skeleton import ZmqSkeletonSource, encode_skeleton_frame  # noqa: E402
from sttr.realtime.tracker import PersonTracker  # noqa: E402

from ._fakes import FakeEngine  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "realtime" / "demo"
OP18_SPEC = ModelSpec(channels=3, frames=64, joints=18, persons=2, layout="openpose18", fps=30.0,
                      labels=("a", "b", "c"), name="fake", backend="fake", channel_names=("x", "y", "score"))


class RecordingEngine:
    """A real engine that remembers the batch size of every call."""

    def __init__(self, engine) -> None:
        self.engine, self.batches = engine, []

    def run(self, windows):
        self.batches.append(len(windows))
        return self.engine.run(windows)

    def probabilities(self, logits):
        return self.engine.probabilities(logits)


class QueueSource:
    """``recv(timeout_s)`` over a queue: frames handed to the service directly, in a known order."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()
        self.drained = threading.Event()  # set when the service asks for more and everything was handed over

    def recv(self, timeout_s=None):
        if self.items.empty():
            self.drained.set()
        try:
            return self.items.get(timeout=timeout_s)
        except queue.Empty:
            return None


class Running:
    """A service serving in a thread; ``stop()`` ends it and returns its stats."""

    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.stats = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.stats = self.service.run()

    def stop(self):
        self.service.stop()
        self.thread.join(10.0)
        assert not self.thread.is_alive(), "the service did not stop within 10 s"
        return self.stats


def _collect_until(sub: Subscriber, done, timeout_s: float = 30.0) -> list:
    """Messages until ``done(messages)`` holds; each wait is a bounded receive, never a fixed sleep."""
    got: list = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        assert time.monotonic() < deadline, (f"condition not met within {timeout_s} s; got {len(got)} messages: "
                                             f"{[type(m).__name__ for m in got][:20]}, {got[-1:]}")
        try:
            got.append(sub.recv(0.1))
        except TimeoutError:
            pass
    return got


def _predictions(messages, stream):
    return [m for m in messages if isinstance(m, Prediction) and m.stream == stream]


def _all_windows_answered(service: InferenceService, frames: int):
    st = service.stats
    return lambda got: (st.frames == frames and st.windows > 0
                        and st.predictions + st.windows_dropped == st.windows
                        and sum(isinstance(m, Prediction) for m in got) == st.predictions)


# ---------------------------------------------------------------------- real model, real recordings, ZeroMQ
def test_streams_are_batched_into_one_engine_call_and_match_the_single_stream_pipeline(ctx):
    """Three streams (two real MSR Action3D recordings of 45 and 38 frames, the first twice) sent in lockstep:
    every engine call runs the three windows due together, and each stream's predictions equal the single-process
    pipeline's."""
    engine, spec = open_model(DEMO / "bundle", backend="onnxruntime", threads=1)
    recorder = RecordingEngine(engine)
    recordings = {"a01": "a01_s10_e01.npz", "a01_again": "a01_s10_e01.npz", "a02": "a02_s10_e01.npz"}
    frames = {name: list(ReplaySource(DEMO / "sequences" / f, realtime=False)) for name, f in recordings.items()}
    config = ServiceConfig(stride=2, top_k=3, max_batch=8, batch_wait_ms=5000.0, status_period_s=0.2)
    addrs = {name: f"inproc://skel-{name}" for name in recordings}
    pubs = {name: Publisher(addr, context=ctx) for name, addr in addrs.items()}
    source = ZmqSkeletonSource(list(addrs.values()), context=ctx)
    service = InferenceService(source, recorder, spec, config,
                               publisher=Publisher("inproc://service-out", context=ctx))
    source.on_bad = service.bad_message
    try:
        with Subscriber("inproc://service-out", timeout_s=5.0, strict=True, context=ctx) as sub:
            assert all(p.wait_for_subscriber(5.0) for p in pubs.values())
            assert service.publisher.wait_for_subscriber(5.0)
            running = Running(service)
            total, received = 0, []
            for count, step in enumerate(zip(*frames.values()), start=1):  # frame i of every stream, then i + 1
                for name, frame in zip(frames, step):
                    pubs[name].send_raw(*encode_skeleton_frame(frame, name))
                    total += 1
                if count >= spec.frames and count % config.stride == 0:  # a round is due: its three answers first
                    received += _collect_until(sub, lambda got: sum(isinstance(m, Prediction) for m in got) == 3)
            stats = running.stop()
    finally:
        for p in [*pubs.values(), service.publisher]:
            p.close()
        source.close()
        engine.close()

    assert stats.frames == total == 3 * 38 and stats.bad_messages == 0 and stats.windows_dropped == 0
    assert recorder.batches and set(recorder.batches) == {3}, recorder.batches  # due together: one call each
    assert stats.batch_sizes == {3: len(recorder.batches)} and stats.mean_batch == 3.0
    per_stream = {name: _predictions(received, name) for name in recordings}
    for name, preds in per_stream.items():
        assert [p.seq for p in preds] == list(range(len(preds))) and len(preds) == 4, name  # frames 32, 34, 36, 38
        assert [p.window.last_frame for p in preds] == [31, 33, 35, 37]
        assert all(p.topic == f"pred.{name}" and p.model == spec.name and p.backend == "onnxruntime" for p in preds)
        assert all(p.latency_ms["inference"] > 0 and p.latency_ms["total"] >= p.latency_ms["inference"]
                   for p in preds)
    # the same recording in two streams: the same answers; batched with another stream, nothing leaks between them
    for a, b in zip(per_stream["a01"], per_stream["a01_again"]):
        assert [(t.index, round(t.score, 5)) for t in a.topk] == [(t.index, round(t.score, 5)) for t in b.topk]
    # and what the single-process pipeline (batch 1) says on the same recording
    reference = []
    pipeline = Pipeline(ReplaySource(DEMO / "sequences" / "a02_s10_e01.npz", realtime=False), engine_batch1(),
                        spec, LiveConfig(stream="ref", stride=2, top_k=3, realtime=False, threaded=False),
                        adapter=LayoutAdapter(spec.layout), tracker=PersonTracker(max_persons=spec.persons))
    pipeline.observers.append(_Collect(reference))
    pipeline.run()
    assert [p["window"]["last_frame"] for p in reference] == [31, 33, 35, 37]
    for ours, theirs in zip(per_stream["a02"], reference):
        assert [t.index for t in ours.topk] == [t["index"] for t in theirs["topk"]]
        np.testing.assert_allclose([t.score for t in ours.topk], [t["score"] for t in theirs["topk"]], atol=1e-4)
    statuses = [m for m in received if isinstance(m, Status)]
    assert {s.stream for s in statuses} <= set(recordings)


def engine_batch1():
    engine, _ = open_model(DEMO / "bundle", backend="onnxruntime", threads=1)
    return engine


class _Collect:
    def __init__(self, out: list) -> None:
        self.out = out

    def on_frame(self, frame, tracked) -> None:
        pass

    def on_prediction(self, payload) -> None:
        self.out.append(payload)

    def on_status(self, payload) -> None:
        pass


def test_openpose_folders_as_streams_through_the_pose_publisher(shared_data, ctx):
    """The real OpenPose JSON sequences, each read by its own pose publisher thread, into one service: every stream
    gets its own ordered predictions, and the engine runs windows of several streams per call under load."""
    folders = {"cj": "coco18_clean_and_jerk", "swim": "coco18_swimming", "cj2": "coco18_clean_and_jerk"}
    engine = FakeEngine(delay_s=0.03)  # slower than the frames come: windows of the streams pile up
    config = ServiceConfig(stride=8, top_k=2, max_batch=4, status_period_s=0.2)
    addrs = {name: f"inproc://op-{name}" for name in folders}
    pubs = {name: Publisher(addr, context=ctx) for name, addr in addrs.items()}
    source = ZmqSkeletonSource(list(addrs.values()), context=ctx)
    service = InferenceService(source, engine, OP18_SPEC, config,
                               publisher=Publisher("inproc://op-out", context=ctx))
    source.on_bad = service.bad_message
    sources = {name: OpenPoseDirSource(shared_data / "openpose" / f, follow=False, image_size=(340, 256))
               for name, f in folders.items()}
    publishers = {name: SkeletonPublisher(sources[name], pubs[name], name) for name in folders}
    try:
        with Subscriber("inproc://op-out", timeout_s=5.0, strict=True, context=ctx) as sub:
            assert all(p.wait_for_subscriber(5.0) for p in pubs.values())
            assert service.publisher.wait_for_subscriber(5.0)
            running = Running(service)
            threads = [threading.Thread(target=p.run) for p in publishers.values()]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60.0)
            sent = sum(p.stats.sent for p in publishers.values())
            received = _collect_until(sub, _all_windows_answered(service, sent))
            stats = running.stop()
    finally:
        for p in [*pubs.values(), service.publisher]:
            p.close()
        source.close()

    assert {n: p.stats.sent for n, p in publishers.items()} == {"cj": 300, "swim": 382, "cj2": 300}
    assert stats.frames == 982 and stats.bad_messages == 0 and stats.errors == 0
    assert max(stats.batch_sizes) > 1, stats.batch_sizes
    assert max(len(shape) and shape[0] for shape in engine.shapes) <= 4  # --max-batch holds
    assert all(shape[1:] == (3, 64, 18, 2) for shape in engine.shapes)
    for name in folders:
        preds = _predictions(received, name)
        assert preds and [p.seq for p in preds] == list(range(len(preds))), name
        last = [p.window.last_frame for p in preds]
        assert last == sorted(set(last)) and all(p.window.frames == 64 for p in preds)
    print(f"\nbatch sizes (size: engine calls) {stats.batch_sizes}, windows {stats.windows}, "
          f"dropped under load {stats.windows_dropped}")


# ---------------------------------------------------------------------- policies, with frames handed in directly
def _op18_frame(index: int, persons: int = 1, t0_ms: float = 0.0):
    from sttr.realtime.frame import SkeletonFrame

    rng = np.random.default_rng(index)
    return SkeletonFrame("openpose18", t0_ms + index * 1000.0 / 30, index,
                         rng.uniform(0.3, 0.7, size=(persons, 18, 2)), np.full((persons, 18), 0.9))


def test_newest_window_wins_per_stream_under_load():
    gate = threading.Event()
    engine = FakeEngine(gate=gate)  # the first engine call blocks until the gate opens
    src = QueueSource()
    service = InferenceService(src, engine, OP18_SPEC, ServiceConfig(stride=1, max_batch=8))
    for i in range(64 + 40):  # windows due from frame 64 on, one per frame
        src.items.put(("cam", _op18_frame(i)))
    running = Running(service)
    try:
        assert src.drained.wait(10.0)  # every frame taken while the batcher is blocked in the engine
        assert service.stats.frames == 104 and service.streams["cam"].pending is not None
    finally:
        gate.set()
        stats = running.stop()
    assert stats.windows == 41 and stats.windows_dropped >= 39  # one pending slot: no queue grows
    assert stats.predictions + stats.windows_dropped == stats.windows
    assert all(shape[0] == 1 for shape in engine.shapes)  # one stream: never two windows of it in one batch


def test_malformed_messages_are_counted_and_reported(ctx):
    src_addr, out_addr = "inproc://bad-in", "inproc://bad-out"
    pub = Publisher(src_addr, context=ctx)
    source = ZmqSkeletonSource(src_addr, context=ctx)
    service = InferenceService(source, FakeEngine(), OP18_SPEC, ServiceConfig(status_period_s=0.05),
                               publisher=Publisher(out_addr, context=ctx))
    source.on_bad = service.bad_message
    good = {"schema": "sttr.skeleton/1", "stream": "cam", "layout": "coco18", "timestamp_ms": 1.0, "index": 0,
            "persons": [{"id": 1, "joints": [[0.5, 0.5]] * 18, "scores": [0.9] * 18}]}
    try:
        with Subscriber(out_addr, topics="status.cam", timeout_s=5.0, strict=True, context=ctx) as sub:
            assert pub.wait_for_subscriber(5.0) and service.publisher.wait_for_subscriber(5.0)
            running = Running(service)
            pub.send_raw(b"skel.cam", json.dumps(good).encode())
            pub.send_raw(b"skel.cam", b"\x00garbage")
            pub.send_raw(b"skel.cam", json.dumps({**good, "index": -3}).encode())
            pub.send_raw(b"skel.cam", json.dumps({**good, "stream": "other"}).encode())  # topic disagrees
            ntu = {**good, "layout": "ntu25", "index": 1, "timestamp_ms": 2.0,
                   "persons": [{"id": 1, "joints": [[0.0, 0.0, 1.0]] * 25, "scores": [1.0] * 25}]}
            pub.send_raw(b"skel.cam", json.dumps(ntu).encode())  # valid message, no adapter to openpose18
            pub.send_raw(b"skel.cam", json.dumps({**good, "index": 2, "timestamp_ms": 3.0}).encode())
            errors: list[str] = []

            def reported(got):
                errors.extend(e for m in got[len(reported.seen):] for e in m.errors)
                reported.seen = list(got)
                return len(errors) >= 4

            reported.seen = []
            _collect_until(sub, reported, timeout_s=10.0)
            assert service.stats.frames == 3  # the good ones, before and after the bad ones
            stats = running.stop()
    finally:
        pub.close()
        service.publisher.close()
        source.close()
    assert stats.bad_messages == 4 and stats.errors == 0
    text = "\n".join(errors)
    assert "payload is neither" in text and "skeleton.index" in text and "topic" in text
    assert "no layout adapter from 'ntu25' to 'openpose18'" in text


def test_a_silent_stream_is_reported_then_dropped(ctx):
    src_addr, out_addr = "inproc://quiet-in", "inproc://quiet-out"
    pub = Publisher(src_addr, context=ctx)
    source = ZmqSkeletonSource(src_addr, context=ctx)
    config = ServiceConfig(status_period_s=0.1, stream_timeout_s=0.5)
    service = InferenceService(source, FakeEngine(), OP18_SPEC, config, publisher=Publisher(out_addr, context=ctx))
    try:
        with Subscriber(out_addr, topics="status.quiet", timeout_s=5.0, strict=True, context=ctx) as sub:
            assert pub.wait_for_subscriber(5.0) and service.publisher.wait_for_subscriber(5.0)
            running = Running(service)
            for i in range(5):
                pub.send_raw(*encode_skeleton_frame(_op18_frame(i, t0_ms=1000.0), "quiet"))
            got = _collect_until(sub, lambda got: any("state dropped" in e for m in got for e in m.errors
                                                      if e.startswith("silent")), timeout_s=10.0)
            assert "quiet" not in service.streams
            stats = running.stop()
    finally:
        pub.close()
        service.publisher.close()
        source.close()
    assert any("no frame for" in e for m in got for e in m.errors)  # reported as silent before it is dropped
    assert got[-1].input_fps == 0.0
    assert stats.streams_seen == 1 and stats.streams_dropped == 1 and stats.frames == 5


def test_a_frame_of_an_unknown_layout_is_named_plainly():
    service = InferenceService(QueueSource(), FakeEngine(), OP18_SPEC)
    frame = _op18_frame(0)
    frame.layout = "nosuchlayout"
    service.on_frame("cam", frame)
    assert service.stats.bad_messages == 1
    assert service.streams["cam"].errors[0].startswith("frame 0: unknown skeleton layout 'nosuchlayout'")


def test_too_many_streams_are_refused():
    src = QueueSource()
    service = InferenceService(src, FakeEngine(), OP18_SPEC, ServiceConfig(max_streams=2))
    for name in ("a", "b", "c", "c"):
        service.on_frame(name, _op18_frame(0))
    assert sorted(service.streams) == ["a", "b"] and service.stats.streams_refused == 2


@pytest.mark.parametrize("change, match", [({"max_batch": 0}, "max_batch"), ({"smoothing": 1.0}, "smoothing"),
                                           ({"batch_wait_ms": -1}, "batch_wait_ms")])
def test_bad_config_is_named(change, match):
    with pytest.raises(ValueError, match=match):
        ServiceConfig(**change)
