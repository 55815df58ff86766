"""Wire messages: well-formed payloads, validators that name the bad field, both encodings."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from sttr.realtime import messages as msg


def _prediction(**overrides):
    kwargs = dict(
        stream="cam0", seq=3,
        window={"first_frame": 10, "last_frame": 41, "frames": 32, "fps": 30.0, "t_first_ms": 100.0,
                "t_last_ms": 1133.3},
        persons=[1, 4], topk=[("wave", 2, 0.7), ("clap", 0, 0.2)], model="sttr-nano", backend="onnxruntime",
        latency_ms={"capture": 0.5, "pose": 20.0, "buffer": 0.1, "inference": 3.0, "publish": 0.02, "total": 24.0})
    kwargs.update(overrides)
    return msg.prediction_payload(**kwargs)


def _status(**overrides):
    kwargs = dict(stream="cam0", input_fps=29.97, frames_dropped=0, persons_seen=2, queue_depth=1,
                  backend="onnxruntime", errors=["engine: boom"])
    kwargs.update(overrides)
    return msg.status_payload(**kwargs)


def test_prediction_has_exactly_the_design_fields():
    p = _prediction()
    assert set(p) == {"schema", "stream", "seq", "window", "persons", "topk", "model", "backend", "latency_ms"}
    assert p["schema"] == "sttr.prediction/1"
    assert set(p["latency_ms"]) == {"capture", "pose", "buffer", "inference", "publish", "total"}
    assert p["topk"][0] == {"label": "wave", "index": 2, "score": 0.7}
    assert msg.validate(p) is p


def test_builders_turn_numpy_scalars_into_plain_types():
    p = _prediction(seq=np.int64(5), persons=np.array([2, 3]), topk=[("a", np.int64(1), np.float32(0.5))])
    s = json.dumps(p)  # would fail on numpy scalars
    assert json.loads(s)["topk"][0]["score"] == pytest.approx(0.5)
    assert msg.validate(p)


def test_status_has_exactly_the_design_fields():
    s = _status()
    assert set(s) == {"schema", "stream", "input_fps", "frames_dropped", "persons_seen", "queue_depth", "backend",
                      "errors"}
    assert msg.validate(s) is s


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p.pop("seq"), "seq"),
    (lambda p: p.__setitem__("extra", 1), "extra"),
    (lambda p: p.__setitem__("seq", -1), "prediction.seq"),
    (lambda p: p.__setitem__("schema", "sttr.prediction/2"), "prediction.schema"),
    (lambda p: p["window"].__setitem__("fps", float("nan")), "prediction.window.fps"),
    (lambda p: p["window"].__setitem__("last_frame", 0), "prediction.window"),
    (lambda p: p["topk"].reverse(), "prediction.topk[1].score"),
    (lambda p: p["topk"][0].__setitem__("score", 1.5), "prediction.topk[0].score"),
    (lambda p: p["latency_ms"].__setitem__("inference", -1.0), "prediction.latency_ms.inference"),
    (lambda p: p["persons"].append("x"), "prediction.persons[2]"),
    (lambda p: p.__setitem__("stream", "bad stream"), "stream id"),
    (lambda p: p.__setitem__("backend", ""), "prediction.backend"),
])
def test_prediction_validator_names_the_bad_field(mutate, field):
    p = copy.deepcopy(_prediction())
    mutate(p)
    with pytest.raises(msg.MessageError, match=field.replace("[", r"\[").replace("]", r"\]")):
        msg.validate_prediction(p)


def test_status_validator_rejects_bad_fields():
    for key, value in [("frames_dropped", 1.5), ("queue_depth", -1), ("errors", "boom"), ("input_fps", "fast")]:
        s = _status()
        s[key] = value
        with pytest.raises(msg.MessageError, match=f"status.{key}"):
            msg.validate(s)


def test_unknown_schema_is_rejected():
    with pytest.raises(msg.MessageError, match="unknown message schema"):
        msg.validate({"schema": "other/1"})


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_encode_decode_round_trip(fmt):
    p = _prediction()
    data = msg.encode(p, fmt)
    assert isinstance(data, bytes)
    assert msg.decode(data) == p
    if fmt == "json":
        assert data.startswith(b'{"schema":"sttr.prediction/1"')


def test_decode_rejects_garbage():
    for data in (b"", b"[1,2]", b"{not json", b"\x01\x02"):
        with pytest.raises(msg.MessageError):
            msg.decode(data)
    with pytest.raises(ValueError, match="json' or 'msgpack"):
        msg.encode({}, "xml")


def test_topics():
    assert msg.prediction_topic("cam0") == b"pred.cam0"
    assert msg.status_topic("cam0") == b"status.cam0"
    assert msg.skeleton_topic("a/b") == b"skel.a/b"
    with pytest.raises(msg.MessageError):
        msg.prediction_topic("two words")


def test_skeleton_payload_from_arrays():
    joints = np.zeros((2, 33, 3), np.float32)
    scores = np.ones((2, 33), np.float32)
    s = msg.skeleton_payload(stream="cam0", layout="mediapipe33", timestamp_ms=12.5, index=7, joints=joints,
                             scores=scores, track_ids=[5, 6])
    assert msg.validate(msg.decode(msg.encode(s, "msgpack"))) == s
    assert [p["id"] for p in s["persons"]] == [5, 6]
    s["persons"][1]["scores"] = s["persons"][1]["scores"][:-1]
    with pytest.raises(msg.MessageError, match=r"skeleton.persons\[1\]"):
        msg.validate(s)
