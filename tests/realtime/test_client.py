"""Subscriber: typed Prediction / Status messages, topic filters, timeouts, malformed input."""
from __future__ import annotations

import time

import pytest

from sttr.realtime import messages as msg
from sttr.realtime.client import Prediction, Status, Subscriber, TopK, parse_message
from sttr.realtime.publisher import Publisher

from ._zmq_helpers import send_until_received

PRED = msg.prediction_payload(
    stream="cam0", seq=7,
    window={"first_frame": 1, "last_frame": 32, "frames": 32, "fps": 30.0, "t_first_ms": 0.0, "t_last_ms": 1033.3},
    persons=[0, 1], topk=[("wave", 2, 0.6), ("clap", 1, 0.3), ("sit", 0, 0.1)], model="nano", backend="fake",
    latency_ms={"capture": 1.0, "pose": 2.0, "buffer": 0.5, "inference": 3.0, "publish": 0.1, "total": 7.0})
STATUS = msg.status_payload(stream="cam0", input_fps=29.5, frames_dropped=2, persons_seen=2, queue_depth=0,
                            backend="fake", errors=["x"])


def _receive(sub: Subscriber):
    def receive(timeout_s: float):
        try:
            return sub.recv(timeout_s)
        except TimeoutError:
            return None
    return receive


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_typed_prediction(ctx, fmt):
    with Publisher("tcp://127.0.0.1:*", fmt=fmt, context=ctx) as pub, \
            Subscriber(pub.addr, topics=["pred."], context=ctx) as sub:
        got = send_until_received(pub, _receive(sub), b"pred.cam0", PRED)
    assert isinstance(got, Prediction)
    assert (got.topic, got.stream, got.seq, got.persons) == ("pred.cam0", "cam0", 7, (0, 1))
    assert got.label == "wave" and got.score == pytest.approx(0.6)
    assert got.topk[1] == TopK("clap", 1, 0.3)
    assert got.window.last_frame == 32 and got.window.fps == 30.0
    assert got.latency_ms["inference"] == 3.0
    assert 0 < got.received_ns <= time.perf_counter_ns()


def test_typed_status_and_topic_filter(ctx):
    with Publisher("inproc://client-status", context=ctx) as pub, \
            Subscriber("inproc://client-status", topics="status.", context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        pub.send(b"pred.cam0", PRED)  # not subscribed
        pub.send(b"status.cam0", STATUS)
        got = sub.recv(5.0)
    assert isinstance(got, Status)
    assert (got.input_fps, got.frames_dropped, got.persons_seen, got.errors) == (29.5, 2, 2, ("x",))


def test_timeout_and_iteration_end(ctx):
    with Publisher("inproc://client-timeout", context=ctx) as pub, \
            Subscriber("inproc://client-timeout", timeout_s=0.05, context=ctx) as sub:
        with pytest.raises(TimeoutError, match="within 0.05 s"):
            sub.recv()
        assert pub.wait_for_subscriber(5.0)
        for _ in range(3):
            pub.send(b"status.cam0", STATUS)
        received = list(sub)  # three messages, then the 0.05 s timeout ends the iteration
    assert len(received) == 3 and all(isinstance(m, Status) for m in received)


def test_malformed_messages_are_skipped_or_raised(ctx):
    bad = dict(PRED, seq=-5)
    with Publisher("inproc://client-bad", context=ctx) as pub, \
            Subscriber("inproc://client-bad", timeout_s=2.0, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        pub.send_raw(b"pred.cam0", b"not a payload")
        pub.send(b"pred.cam0", bad)
        pub.send(b"pred.cam0", PRED)
        got = sub.recv()
        assert isinstance(got, Prediction) and got.seq == 7 and sub.invalid == 2
    with Publisher("inproc://client-strict", context=ctx) as pub, \
            Subscriber("inproc://client-strict", timeout_s=2.0, strict=True, context=ctx) as sub:
        assert pub.wait_for_subscriber(5.0)
        pub.send(b"pred.cam0", bad)
        with pytest.raises(msg.MessageError, match="prediction.seq"):
            sub.recv()


def test_parse_message_ignores_other_schemas():
    skel = msg.skeleton_payload(stream="c", layout="coco17", timestamp_ms=1.0, index=0, joints=[[[0, 0]] * 17],
                                scores=[[1.0] * 17])
    assert parse_message([b"skel.c", msg.encode(skel)]) is None
    with pytest.raises(msg.MessageError, match="2 frames"):
        parse_message([b"pred.c"])
