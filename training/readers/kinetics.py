"""Kinetics-skeleton JSON (spec §4.6): one file per video plus a label file per split.

Video file: `{"data": [{"frame_index": k, "skeleton": [{"pose": [x0, y0, ..., x17, y17], "score": [s0..s17]}]}],
"label": str, "label_index": int}` (OpenPose COCO-18, coordinates normalised to [0, 1] by the frame size).
Label file: `{video_id: {"has_skeleton": bool, "label": str, "label_index": int}}`.

`frame_index` may start at 0 or 1 (both occur in the wild); frames are placed relative to the smallest index, gaps
stay empty. A frame_index listed twice: the later entry's persons replace the earlier entry's slot by slot (the
reference writes both into the same array rows). A video with empty `data` is allowed (0 frames).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KineticsVideo", "KineticsLabel", "KineticsFormatError", "read_kinetics_video", "read_kinetics_labels"]

NUM_JOINTS = 18


class KineticsFormatError(ValueError):
    """A Kinetics-skeleton JSON file does not follow the format; the message names the file and the field."""


@dataclass
class KineticsVideo:
    """One Kinetics-skeleton video.

    Attributes:
        path: The file read; `video_id` is its stem.
        joints: float32 (T, P, 18, 3) (the `dtype` asked for): x, y in [0, 1] image coordinates and the detection
            score, persons in file order per frame (no identity across frames), zeros where absent. T spans the
            smallest to the largest frame_index; P = most persons in any frame.
        first_index: frame_index of row 0 (None for an empty video).
        label: Class name in the file ("unknown" in demo output), `label_index` its index (-1 when unknown).
    """

    path: Path
    joints: np.ndarray
    first_index: int | None
    label: str | None
    label_index: int | None

    @property
    def video_id(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class KineticsLabel:
    has_skeleton: bool
    label: str
    label_index: int


def _person(path: Path, where: str, person: Any, dtype: Any = np.float32) -> np.ndarray:
    if not isinstance(person, dict) or "pose" not in person or "score" not in person:
        raise KineticsFormatError(f"{path}: {where}: expected an object with 'pose' and 'score'")
    pose, score = person["pose"], person["score"]
    if not isinstance(pose, list) or not isinstance(score, list) or len(pose) != 2 * NUM_JOINTS \
            or len(score) != NUM_JOINTS:
        raise KineticsFormatError(f"{path}: {where}: expected 'pose' of {2 * NUM_JOINTS} numbers and 'score' of "
                                  f"{NUM_JOINTS}, got {len(pose) if isinstance(pose, list) else pose!r} and "
                                  f"{len(score) if isinstance(score, list) else score!r}")
    try:
        xy = np.asarray(pose, dtype=dtype).reshape(NUM_JOINTS, 2)
        s = np.asarray(score, dtype=dtype).reshape(NUM_JOINTS, 1)
    except (TypeError, ValueError):
        raise KineticsFormatError(f"{path}: {where}: 'pose' and 'score' must hold numbers") from None
    return np.concatenate([xy, s], axis=1)


def read_kinetics_video(path: str | Path, dtype: Any = np.float32) -> KineticsVideo:
    """Read one per-video Kinetics-skeleton JSON file.

    `dtype`: of `joints`; float64 keeps the JSON's numbers exactly, so that a later transform (x - 0.5, ...) rounds
    to float32 once, as the reference does (it computes in float64 and stores float32).

    Raises:
        KineticsFormatError: invalid JSON, no `data` list, a frame without an integer `frame_index` or a `skeleton`
            list, or a person whose pose/score lengths are not 36/18.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise KineticsFormatError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise KineticsFormatError(f"{path}: expected an object with a 'data' list (Kinetics-skeleton format)")
    frames: dict[int, list[np.ndarray]] = {}
    for k, frame in enumerate(obj["data"]):
        if not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int) \
                or not isinstance(frame.get("skeleton"), list):
            raise KineticsFormatError(f"{path}: data[{k}]: expected an integer 'frame_index' and a 'skeleton' list")
        people = [_person(path, f"data[{k}].skeleton[{p}]", s, dtype) for p, s in enumerate(frame["skeleton"])]
        slots = frames.setdefault(frame["frame_index"], [])
        slots[: len(people)] = people  # a repeated frame_index: its persons replace the earlier ones slot by slot
    label, label_index = obj.get("label"), obj.get("label_index")
    if not frames:
        return KineticsVideo(path, np.zeros((0, 0, NUM_JOINTS, 3), dtype), None, label, label_index)
    first = min(frames)
    num_persons = max(len(p) for p in frames.values())
    joints = np.zeros((max(frames) - first + 1, num_persons, NUM_JOINTS, 3), dtype=dtype)
    for index, people in frames.items():
        if people:
            joints[index - first, : len(people)] = np.stack(people)
    return KineticsVideo(path, joints, first, label, label_index)


def read_kinetics_labels(path: str | Path) -> dict[str, KineticsLabel]:
    """Read `kinetics_{train,val}_label.json`: video id -> (has_skeleton, label, label_index).

    Raises:
        FileNotFoundError: no such file.
        KineticsFormatError: a folder, or not a JSON object of objects with those three keys.
    """
    path = Path(path)
    if path.is_dir():  # else an IsADirectoryError traceback
        inside = sorted(p.name for p in path.glob("*label*.json"))
        hint = f" (this folder holds {', '.join(inside[:3])})" if inside else ""
        raise KineticsFormatError(f"{path} is a folder; expected the Kinetics label JSON file, e.g. "
                                  f"kinetics_val_label.json{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"Kinetics label file {path} does not exist")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise KineticsFormatError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise KineticsFormatError(f"{path}: expected an object mapping video ids to label records")
    out = {}
    for video_id, rec in obj.items():
        try:
            out[video_id] = KineticsLabel(bool(rec["has_skeleton"]), str(rec["label"]), int(rec["label_index"]))
        except (TypeError, KeyError, ValueError):
            raise KineticsFormatError(f"{path}: entry {video_id!r}: expected has_skeleton, label and label_index, "
                                      f"got {rec!r}"[:300]) from None
    return out
