"""Wire messages (DESIGN.md): builders, validators and the JSON / msgpack encodings.

Every message is a ZeroMQ multipart ``[topic, payload]``; the payload is a map whose ``schema`` names its kind and
version. JSON (UTF-8, compact) is the default encoding; msgpack on request. A decoder tells them apart by the
first byte (a JSON payload starts with ``{``, a msgpack map with 0x80-0x8f, 0xde or 0xdf).

``sttr.prediction/1`` (topic ``pred.<stream>``)::

    {"schema": "sttr.prediction/1", "stream": "cam0", "seq": 41,
     "window": {"first_frame": 10, "last_frame": 57, "frames": 48, "fps": 30.0,
                "t_first_ms": 1234.5, "t_last_ms": 2801.2},          # capture timestamps, monotonic ms
     "persons": [3, 7],                                               # track ids in the window's person slots
     "topk": [{"label": "wave", "index": 4, "score": 0.81}, ...],     # calibrated probabilities, best first
     "model": "sttr-nano", "backend": "onnxruntime",
     "latency_ms": {"capture": 0.4, "pose": 21.0, "buffer": 0.3, "inference": 4.1, "publish": 0.05, "total": 27.9}}

``sttr.status/1`` (topic ``status.<stream>``, about once a second)::

    {"schema": "sttr.status/1", "stream": "cam0", "input_fps": 29.9, "frames_dropped": 0, "persons_seen": 2,
     "queue_depth": 0, "backend": "onnxruntime", "errors": []}

``sttr.skeleton/1`` (input, topic ``skel.<stream>``)::

    {"schema": "sttr.skeleton/1", "stream": "cam0", "layout": "mediapipe33", "timestamp_ms": 1234.5, "index": 10,
     "persons": [{"id": 3, "joints": [[x, y(, z)], ...], "scores": [s, ...]}]}

Pure Python (json; msgpack imported only when asked for).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "PREDICTION_SCHEMA", "STATUS_SCHEMA", "SKELETON_SCHEMA", "LATENCY_STAGES", "Format", "MessageError",
    "prediction_payload", "status_payload", "skeleton_payload", "validate", "validate_prediction",
    "validate_status", "validate_skeleton", "encode", "NonFiniteError", "decode", "prediction_topic", "status_topic",
    "skeleton_topic", "check_stream_id",
]

PREDICTION_SCHEMA = "sttr.prediction/1"
STATUS_SCHEMA = "sttr.status/1"
SKELETON_SCHEMA = "sttr.skeleton/1"
LATENCY_STAGES = ("capture", "pose", "buffer", "inference", "publish", "total")
WINDOW_FIELDS = ("first_frame", "last_frame", "frames", "fps", "t_first_ms", "t_last_ms")
PREDICTION_FIELDS = ("schema", "stream", "seq", "window", "persons", "topk", "model", "backend", "latency_ms")
STATUS_FIELDS = ("schema", "stream", "input_fps", "frames_dropped", "persons_seen", "queue_depth", "backend",
                 "errors")
SKELETON_FIELDS = ("schema", "stream", "layout", "timestamp_ms", "index", "persons")

Format = Literal["json", "msgpack"]
_STREAM_RE = re.compile(r"^[A-Za-z0-9_\-:/]{1,64}$")


class MessageError(ValueError):
    """A payload that does not follow its schema (the message names the field and what was expected)."""


# ---------------------------------------------------------------------- topics
def check_stream_id(stream: str) -> str:
    """Return ``stream`` if it is a valid stream id (1-64 of A-Z a-z 0-9 _ - : /), else raise MessageError."""
    if not isinstance(stream, str) or not _STREAM_RE.match(stream):
        raise MessageError(f"stream id must be 1-64 characters of A-Z a-z 0-9 _ - : /, got {stream!r}")
    return stream


def prediction_topic(stream: str) -> bytes:
    """``pred.<stream>`` as bytes."""
    return f"pred.{check_stream_id(stream)}".encode()


def status_topic(stream: str) -> bytes:
    """``status.<stream>`` as bytes."""
    return f"status.{check_stream_id(stream)}".encode()


def skeleton_topic(stream: str) -> bytes:
    """``skel.<stream>`` as bytes."""
    return f"skel.{check_stream_id(stream)}".encode()


# ---------------------------------------------------------------------- builders
def prediction_payload(*, stream: str, seq: int, window: Mapping[str, Any], persons: Sequence[int],
                       topk: Sequence[tuple[str, int, float]], model: str, backend: str,
                       latency_ms: Mapping[str, float]) -> dict[str, Any]:
    """Build a ``sttr.prediction/1`` payload (plain Python types only, ready for either encoding).

    Args:
        stream: stream id.
        seq: sequence number of this prediction in the stream (0, 1, 2, ...).
        window: the WINDOW_FIELDS (first/last frame index, frame count, fps, first/last capture timestamp in ms).
        persons: track ids in the window's person slots.
        topk: (label, class index, probability) best first.
        model: model name; backend: engine backend name.
        latency_ms: milliseconds per LATENCY_STAGES stage.
    """
    return {
        "schema": PREDICTION_SCHEMA, "stream": stream, "seq": int(seq),
        "window": {"first_frame": int(window["first_frame"]), "last_frame": int(window["last_frame"]),
                   "frames": int(window["frames"]), "fps": float(window["fps"]),
                   "t_first_ms": float(window["t_first_ms"]), "t_last_ms": float(window["t_last_ms"])},
        "persons": [int(p) for p in persons],
        "topk": [{"label": str(label), "index": int(index), "score": float(score)} for label, index, score in topk],
        "model": str(model), "backend": str(backend),
        "latency_ms": {stage: round(float(latency_ms.get(stage, 0.0)), 4) for stage in LATENCY_STAGES},
    }


def status_payload(*, stream: str, input_fps: float, frames_dropped: int, persons_seen: int, queue_depth: int,
                   backend: str, errors: Sequence[str] = ()) -> dict[str, Any]:
    """Build a ``sttr.status/1`` payload; ``errors`` are short messages since the previous status."""
    return {"schema": STATUS_SCHEMA, "stream": stream, "input_fps": round(float(input_fps), 3),
            "frames_dropped": int(frames_dropped), "persons_seen": int(persons_seen),
            "queue_depth": int(queue_depth), "backend": str(backend), "errors": [str(e) for e in errors]}


def skeleton_payload(*, stream: str, layout: str, timestamp_ms: float, index: int, joints: Any, scores: Any,
                     track_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Build a ``sttr.skeleton/1`` payload from (P, V, D) joints and (P, V) scores (arrays or nested lists)."""
    joints = joints.tolist() if hasattr(joints, "tolist") else joints
    scores = scores.tolist() if hasattr(scores, "tolist") else scores
    ids = list(track_ids) if track_ids is not None else [None] * len(joints)
    persons = [{"id": None if pid is None else int(pid), "joints": j, "scores": s}
               for pid, j, s in zip(ids, joints, scores)]
    return {"schema": SKELETON_SCHEMA, "stream": stream, "layout": str(layout), "timestamp_ms": float(timestamp_ms),
            "index": int(index), "persons": persons}


# ---------------------------------------------------------------------- validators
def _require_fields(payload: Mapping[str, Any], fields: Sequence[str], what: str) -> None:
    if not isinstance(payload, Mapping):
        raise MessageError(f"{what}: expected a map, got {type(payload).__name__}")
    missing = [f for f in fields if f not in payload]
    extra = [f for f in payload if f not in fields]
    if missing or extra:
        raise MessageError(f"{what}: missing fields {missing}, unexpected fields {extra}; expected exactly {fields}")


def _number(value: Any, where: str, *, integer: bool = False, minimum: float | None = None) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or (not integer and not math.isfinite(value)):
        raise MessageError(f"{where}: expected {'an integer' if integer else 'a finite number'}, got {value!r}")
    if minimum is not None and value < minimum:
        raise MessageError(f"{where}: expected >= {minimum}, got {value!r}")


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{where}: expected a non-empty string, got {value!r}")


def validate_prediction(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check a ``sttr.prediction/1`` payload field by field; returns it, raises MessageError naming the field."""
    _require_fields(payload, PREDICTION_FIELDS, "prediction")
    if payload["schema"] != PREDICTION_SCHEMA:
        raise MessageError(f"prediction.schema: expected {PREDICTION_SCHEMA!r}, got {payload['schema']!r}")
    check_stream_id(payload["stream"])
    _number(payload["seq"], "prediction.seq", integer=True, minimum=0)
    window = payload["window"]
    _require_fields(window, WINDOW_FIELDS, "prediction.window")
    for key in ("first_frame", "last_frame", "frames"):
        _number(window[key], f"prediction.window.{key}", integer=True)
    for key in ("fps", "t_first_ms", "t_last_ms"):
        _number(window[key], f"prediction.window.{key}")
    if window["frames"] < 1 or window["fps"] <= 0:
        raise MessageError(f"prediction.window: expected frames >= 1 and fps > 0, got {window}")
    if window["last_frame"] < window["first_frame"] or window["t_last_ms"] < window["t_first_ms"]:
        raise MessageError(f"prediction.window: expected first <= last (frames and times), got {window}")
    if not isinstance(payload["persons"], list):
        raise MessageError(f"prediction.persons: expected a list of track ids, got {payload['persons']!r}")
    for i, pid in enumerate(payload["persons"]):
        _number(pid, f"prediction.persons[{i}]", integer=True)
    _validate_topk(payload["topk"])
    _text(payload["model"], "prediction.model")
    _text(payload["backend"], "prediction.backend")
    latency = payload["latency_ms"]
    _require_fields(latency, LATENCY_STAGES, "prediction.latency_ms")
    for stage in LATENCY_STAGES:
        _number(latency[stage], f"prediction.latency_ms.{stage}", minimum=0.0)
    return payload


def _validate_topk(topk: Any) -> None:
    if not isinstance(topk, list) or not topk:
        raise MessageError(f"prediction.topk: expected a non-empty list, got {topk!r}")
    previous = math.inf
    for i, entry in enumerate(topk):
        where = f"prediction.topk[{i}]"
        _require_fields(entry, ("label", "index", "score"), where)
        _text(entry["label"], f"{where}.label")
        _number(entry["index"], f"{where}.index", integer=True, minimum=0)
        _number(entry["score"], f"{where}.score", minimum=0.0)
        if entry["score"] > 1.0 + 1e-6 or entry["score"] > previous + 1e-9:
            raise MessageError(f"{where}.score: expected a probability <= 1, sorted best first, got {topk}")
        previous = entry["score"]


def validate_status(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check a ``sttr.status/1`` payload; returns it, raises MessageError naming the field."""
    _require_fields(payload, STATUS_FIELDS, "status")
    if payload["schema"] != STATUS_SCHEMA:
        raise MessageError(f"status.schema: expected {STATUS_SCHEMA!r}, got {payload['schema']!r}")
    check_stream_id(payload["stream"])
    _number(payload["input_fps"], "status.input_fps", minimum=0.0)
    for key in ("frames_dropped", "persons_seen", "queue_depth"):
        _number(payload[key], f"status.{key}", integer=True, minimum=0)
    _text(payload["backend"], "status.backend")
    if not isinstance(payload["errors"], list) or not all(isinstance(e, str) for e in payload["errors"]):
        raise MessageError(f"status.errors: expected a list of strings, got {payload['errors']!r}")
    return payload


def validate_skeleton(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check a ``sttr.skeleton/1`` payload (persons' joints all V × D, scores V); raises MessageError."""
    _require_fields(payload, SKELETON_FIELDS, "skeleton")
    if payload["schema"] != SKELETON_SCHEMA:
        raise MessageError(f"skeleton.schema: expected {SKELETON_SCHEMA!r}, got {payload['schema']!r}")
    check_stream_id(payload["stream"])
    _text(payload["layout"], "skeleton.layout")
    _number(payload["timestamp_ms"], "skeleton.timestamp_ms")
    _number(payload["index"], "skeleton.index", integer=True, minimum=0)
    if not isinstance(payload["persons"], list):
        raise MessageError(f"skeleton.persons: expected a list, got {payload['persons']!r}")
    shape = None
    for i, person in enumerate(payload["persons"]):
        where = f"skeleton.persons[{i}]"
        _require_fields(person, ("id", "joints", "scores"), where)
        joints, scores = person["joints"], person["scores"]
        dims = {len(j) for j in joints} if isinstance(joints, list) else {-1}
        if not joints or len(dims) != 1 or dims.pop() not in (2, 3) or not isinstance(scores, list) \
                or len(scores) != len(joints):
            raise MessageError(f"{where}: expected joints V × (2|3) and V scores, got {len(joints)} joints, "
                               f"{len(scores) if isinstance(scores, list) else scores!r} scores")
        if shape is not None and shape != (len(joints), len(joints[0])):
            raise MessageError(f"{where}: expected the same joints shape {shape} as person 0")
        shape = (len(joints), len(joints[0]))
    return payload


_VALIDATORS = {PREDICTION_SCHEMA: validate_prediction, STATUS_SCHEMA: validate_status,
               SKELETON_SCHEMA: validate_skeleton}


def validate(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Validate any known payload by its ``schema`` field."""
    schema = payload.get("schema") if isinstance(payload, Mapping) else None
    if schema not in _VALIDATORS:
        raise MessageError(f"unknown message schema {schema!r}; expected one of {sorted(_VALIDATORS)}")
    return _VALIDATORS[schema](payload)


# ---------------------------------------------------------------------- encodings
def _msgpack():
    try:
        import msgpack
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("msgpack encoding needs the msgpack package: pip install 'sttr[live]'") from exc
    return msgpack


class NonFiniteError(ValueError):
    """A payload holds NaN or an infinite number: no encoding sends it (JSON cannot carry it; a msgpack subscriber
    that validates messages would reject it)."""


def encode(payload: Mapping[str, Any], fmt: Format = "json") -> bytes:
    """Encode a payload as compact UTF-8 JSON (default) or msgpack; NonFiniteError for NaN or infinity in it."""
    if fmt == "json":
        try:  # the encoder checks every float as it writes it: no second walk over the payload
            return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        except ValueError as exc:
            raise NonFiniteError(str(exc)) from None
    if fmt == "msgpack":
        if not _all_finite(payload):
            raise NonFiniteError("a NaN or infinite number in the payload")
        return _msgpack().packb(payload, use_bin_type=True)
    raise ValueError(f"message format must be 'json' or 'msgpack', got {fmt!r}")


def _all_finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a payload of dicts, lists and numbers."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    return True


def decode(data: bytes) -> dict[str, Any]:
    """Decode a JSON or msgpack payload (told apart by the first byte); raises MessageError on garbage."""
    if not data:
        raise MessageError("empty payload")
    first = data[0]
    try:
        if first == 0x7B:  # '{'
            payload = json.loads(data)
        elif 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):
            payload = _msgpack().unpackb(data, raw=False)
        else:
            raise MessageError(f"payload is neither a JSON object nor a msgpack map (first byte 0x{first:02x})")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        if isinstance(exc, MessageError):
            raise
        raise MessageError(f"undecodable payload ({type(exc).__name__}: {str(exc)[:200] or 'no detail'})") from None
    if not isinstance(payload, dict):
        raise MessageError(f"payload must be a map, got {type(payload).__name__}")
    return payload
