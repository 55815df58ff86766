"""ZeroMQ skeleton input: encode/decode pair, validation, and a socket round trip (inproc and a random port)."""
from __future__ import annotations

import json

import numpy as np
import pytest

zmq = pytest.importorskip("zmq")

from sttr.realtime.frame import SkeletonFrame  # noqa: E402
from sttr.realtime.messages import MessageError  # noqa: E402
from sttr.realtime.sources.zmq_skeleton import (ZmqSkeletonSender, ZmqSkeletonSource,  # noqa: E402
                                                decode_skeleton_frame, encode_skeleton_frame)


def _frame(index: int, persons: int = 2, layout: str = "ntu25", joints: int = 25, dims: int = 3) -> SkeletonFrame:
    rng = np.random.default_rng(index)
    return SkeletonFrame(layout, 1000.0 + 33.3 * index, index, rng.normal(size=(persons, joints, dims)),
                         rng.uniform(size=(persons, joints)), track_ids=list(range(10, 10 + persons)))


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_encode_decode_pair(fmt):
    if fmt == "msgpack":
        pytest.importorskip("msgpack")
    frame = _frame(3)
    topic, payload = encode_skeleton_frame(frame, "cam1", fmt)
    assert topic == b"skel.cam1"
    stream, back = decode_skeleton_frame([topic, payload])
    assert stream == "cam1" and back.layout == "ntu25" and back.index == 3 and back.track_ids == [10, 11]
    assert back.timestamp_ms == pytest.approx(frame.timestamp_ms)
    np.testing.assert_allclose(back.joints, frame.joints, rtol=1e-6)
    np.testing.assert_allclose(back.scores, frame.scores, rtol=1e-6)


def test_an_external_estimator_message_in_plain_json():
    # what a C++ / JS estimator would write by hand, following DESIGN.md
    payload = {"schema": "sttr.skeleton/1", "stream": "door", "layout": "coco17", "timestamp_ms": 5, "index": 0,
               "persons": [{"id": None, "joints": [[0.5, 0.5]] * 17, "scores": [0.9] * 17}]}
    stream, frame = decode_skeleton_frame([b"skel.door", json.dumps(payload).encode()])
    assert stream == "door" and frame.joints.shape == (1, 17, 2) and frame.track_ids is None
    payload["persons"] = []
    _, empty = decode_skeleton_frame(json.dumps(payload).encode())
    assert empty.joints.shape == (0, 17, 2)


@pytest.mark.parametrize("change, match", [
    ({"schema": "sttr.prediction/1"}, "schema"),
    ({"layout": "ntu25"}, "25 joints"),
    ({"index": -1}, "index"),
    ({"persons": [{"id": 1, "joints": [[0, 0, 0, 0]] * 17, "scores": [1] * 17}]}, "V × \\(2\\|3\\)"),
])
def test_validation_errors_are_clear(change, match):
    payload = {"schema": "sttr.skeleton/1", "stream": "a", "layout": "coco17", "timestamp_ms": 5.0, "index": 0,
               "persons": [{"id": 1, "joints": [[0.5, 0.5]] * 17, "scores": [0.9] * 17}]}
    payload.update(change)
    with pytest.raises(MessageError, match=match):
        decode_skeleton_frame([b"skel.a", json.dumps(payload).encode()])
    with pytest.raises(MessageError, match="topic"):
        decode_skeleton_frame([b"skel.b", encode_skeleton_frame(_frame(0), "a")[1]])
    with pytest.raises(MessageError):
        decode_skeleton_frame([b"skel.a", b"\x00garbage"])


@pytest.mark.parametrize("joints, match", [
    (["ab"] * 17, "joints must be numbers"),  # right length, wrong type: np.asarray raised ValueError
    ([["a", "b"]] * 17, "got text"),
    ([[True, False]] * 17, "true/false"),
    ([[None, 0.5]] * 17, "non-number"),
    ([[0.5, 0.5]] * 16 + [[0.5, 0.5, 0.5]], "V × \\(2\\|3\\)"),
])
def test_joints_that_are_not_numbers_are_a_message_error(joints, match):
    payload = {"schema": "sttr.skeleton/1", "stream": "a", "layout": "coco17", "timestamp_ms": 5.0, "index": 0,
               "persons": [{"id": 1, "joints": joints, "scores": [0.9] * 17}]}
    with pytest.raises(MessageError, match=match):
        decode_skeleton_frame([b"skel.a", json.dumps(payload).encode()])


def test_a_layout_path_in_a_message_is_refused_not_read(tmp_path):
    layout_file = tmp_path / "mine.json"
    layout_file.write_text("{}")  # would be opened by get_layout if the decoder resolved paths
    payload = {"schema": "sttr.skeleton/1", "stream": "a", "layout": str(layout_file), "timestamp_ms": 5.0,
               "index": 0, "persons": [{"id": 1, "joints": [[0.5, 0.5]] * 17, "scores": [0.9] * 17}]}
    with pytest.raises(MessageError, match="layout name"):
        decode_skeleton_frame([b"skel.a", json.dumps(payload).encode()])
    payload["layout"] = "my_own_layout"  # an unknown name still passes: its shape is trusted
    assert decode_skeleton_frame([b"skel.a", json.dumps(payload).encode()])[1].layout == "my_own_layout"


def test_a_source_skips_a_message_with_text_joints():
    ctx = zmq.Context()
    try:
        with ZmqSkeletonSender("inproc://skel-text", "cam0", context=ctx) as sender, \
                ZmqSkeletonSource("inproc://skel-text", context=ctx, timeout_s=0.3) as source:
            _first(sender, source, _frame(0))
            while source.recv(timeout_s=0.05) is not None:
                pass
            bad = {"schema": "sttr.skeleton/1", "stream": "cam0", "layout": "ntu25", "timestamp_ms": 5.0,
                   "index": 1, "persons": [{"id": 1, "joints": ["ab"] * 25, "scores": [0.9] * 25}]}
            sender._socket.send_multipart([b"skel.cam0", json.dumps(bad).encode()])
            sender.send(_frame(2))
            assert [f.index for f in source] == [2]
            assert source.frames_dropped == 1 and "must be numbers" in source.errors[0]
    finally:
        ctx.term()


def _first(sender: ZmqSkeletonSender, source: ZmqSkeletonSource, frame: SkeletonFrame):
    """Get past ZeroMQ's slow joiner: resend the first frame until it arrives (each try waits on a poll)."""
    for _ in range(200):
        sender.send(frame)
        got = source.recv(timeout_s=0.02)
        if got is not None:
            return got
    raise AssertionError("no skeleton message arrived")


def test_round_trip_inproc_and_a_bad_message_is_skipped():
    ctx = zmq.Context()
    try:
        with ZmqSkeletonSender("inproc://skel-test", "cam0", context=ctx) as sender, \
                ZmqSkeletonSource("inproc://skel-test", streams=["cam0"], context=ctx, timeout_s=0.5) as source:
            stream, first = _first(sender, source, _frame(0))
            assert stream == "cam0" and first.index == 0
            while source.recv(timeout_s=0.05) is not None:  # drain repeats of the first frame
                pass
            sender._socket.send_multipart([b"skel.cam0", b"{not json"])  # a broken sender
            for i in range(1, 6):
                sender.send(_frame(i))
            frames = list(source)  # ends after timeout_s without messages
            assert [f.index for f in frames] == [1, 2, 3, 4, 5]
            np.testing.assert_allclose(frames[2].joints, _frame(3).joints, rtol=1e-6)
            assert source.frames_dropped == 1 and "undecodable" in source.errors[0]
    finally:
        ctx.term()


def test_round_trip_random_tcp_port_msgpack_and_stream_filter():
    pytest.importorskip("msgpack")
    with ZmqSkeletonSender("tcp://127.0.0.1:*", "cam7", fmt="msgpack") as sender:
        assert sender.endpoint.startswith("tcp://127.0.0.1:")
        with ZmqSkeletonSource(sender.endpoint, streams=["cam7"]) as source:
            stream, frame = _first(sender, source, _frame(4, persons=1, layout="openpose18", joints=18, dims=2))
            assert stream == "cam7" and frame.layout == "openpose18" and frame.joints.shape == (1, 18, 2)
            while source.recv(timeout_s=0.05) is not None:
                pass
            # the subscription is live now: a frame on another stream is filtered out, the next cam7 one arrives
            sender._socket.send_multipart(encode_skeleton_frame(_frame(8), "other", "msgpack"))
            sender.send(_frame(9))
            stream, frame = source.recv(timeout_s=2.0)
            assert stream == "cam7" and frame.index == 9


def test_close_from_another_thread_ends_a_waiting_iteration():
    import threading

    with ZmqSkeletonSource("tcp://127.0.0.1:*", bind=True) as source:  # nobody sends
        timer = threading.Timer(0.2, source.close)
        timer.start()
        assert list(source) == []  # would wait forever without the close
        timer.join()
        assert source.recv(timeout_s=0.01) is None


def test_iteration_follows_one_stream():
    ctx = zmq.Context()
    try:
        with ZmqSkeletonSender("inproc://skel-two", "camA", context=ctx) as sender, \
                ZmqSkeletonSource("inproc://skel-two", context=ctx, timeout_s=0.3) as source:
            _first(sender, source, _frame(0))  # connected
            while source.recv(timeout_s=0.05) is not None:
                pass
            for i in range(1, 5):  # two pose processes' frames interleaved on one endpoint
                sender._socket.send_multipart(encode_skeleton_frame(_frame(i), "camA"))
                sender._socket.send_multipart(encode_skeleton_frame(_frame(100 + i), "camB"))
            assert [f.index for f in source] == [1, 2, 3, 4]  # one buffer never gets two streams' frames
            assert source.stream == "camA" and source.stats["ignored"] == 4
            assert len(source.errors) == 1 and "'camB'" in source.errors[0] and "sttr serve" in source.errors[0]
    finally:
        ctx.term()


def test_stream_ids_are_exact_not_prefixes():
    ctx = zmq.Context()
    try:
        with ZmqSkeletonSender("inproc://skel-exact", "cam01", context=ctx) as sender, \
                ZmqSkeletonSource("inproc://skel-exact", streams=["cam0"], context=ctx) as source:
            probe = ctx.socket(zmq.SUB)  # a subscription that sees every message, to know they were sent
            probe.setsockopt(zmq.SUBSCRIBE, b"")
            probe.connect("inproc://skel-exact")
            try:
                for _ in range(200):
                    sender.send(_frame(1))
                    if probe.poll(20, zmq.POLLIN):
                        break
                sender.send(_frame(2))
                assert source.recv(timeout_s=0.3) is None  # skel.cam0 is a prefix of skel.cam01, not its id
            finally:
                probe.close(0)
    finally:
        ctx.term()
