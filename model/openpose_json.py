"""One OpenPose `--write_json` per-frame file -> persons x joints x (x, y, score).

OpenPose writes `{"version": ..., "people": [{"pose_keypoints_2d": [x0, y0, s0, x1, ...], ...}, ...]}` per frame:
75 values per person for the BODY_25 model, 54 for COCO-18 (the layout Kinetics-skeleton uses). Coordinates are
pixels (or [0, 1] with `--keypoint_scale`), undetected joints are `0, 0, 0`. json + numpy only: realtime's
OpenPose source reuses this module.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OpenPoseJsonError", "read_openpose_json", "parse_openpose_people", "frame_index_from_name",
           "LAYOUT_BY_VALUES"]

# values per person in pose_keypoints_2d -> layout name (skeleton.LAYOUTS)
LAYOUT_BY_VALUES = {75: "body25", 54: "openpose18"}
_JOINTS = {"body25": 25, "openpose18": 18}
_INDEX = re.compile(r"(\d+)(?=_keypoints\.json$)|(\d+)(?=\.json$)")


class OpenPoseJsonError(ValueError):
    """An OpenPose JSON file is not what `--write_json` writes; the message names the file and what was expected."""


def parse_openpose_people(obj: Any, source: str = "<json>", layout: str | None = None
                          ) -> tuple[np.ndarray, str | None]:
    """Persons of an already-decoded OpenPose frame.

    Args:
        obj: The decoded JSON object.
        source: Name used in error messages (the file path).
        layout: Expected layout (`body25` or `openpose18`); detected from the value count when None.

    Returns:
        (joints, layout): float32 (P, V, 3) x, y, score per person, and the layout name. A frame without people
        gives (0, V, 3) with the given layout, or (0, 0, 3) and None when no layout was given.

    Raises:
        OpenPoseJsonError: no `people` list, a person without `pose_keypoints_2d`, a value count that is not
            54 or 75 (or not the expected layout's), persons of different layouts, or non-numbers.
    """
    if layout is not None and layout not in _JOINTS:
        raise OpenPoseJsonError(f"{source}: unknown OpenPose layout {layout!r}; expected one of {sorted(_JOINTS)}")
    if not isinstance(obj, dict) or not isinstance(obj.get("people"), list):
        raise OpenPoseJsonError(f"{source}: expected an OpenPose --write_json object with a 'people' list")
    rows = []
    for p, person in enumerate(obj["people"]):
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(values, list):
            raise OpenPoseJsonError(f"{source}: people[{p}] has no 'pose_keypoints_2d' list")
        found = LAYOUT_BY_VALUES.get(len(values))
        if found is None:
            raise OpenPoseJsonError(f"{source}: people[{p}].pose_keypoints_2d has {len(values)} values; expected 75 "
                                    f"(BODY_25) or 54 (COCO-18), i.e. (x, y, score) per joint")
        if layout is not None and found != layout:
            raise OpenPoseJsonError(f"{source}: people[{p}] is {found} ({len(values)} values) but {layout} "
                                    f"({3 * _JOINTS[layout]} values) was expected")
        layout = found
        rows.append(values)
    if not rows:
        return np.zeros((0, _JOINTS.get(layout, 0), 3), dtype=np.float32), layout
    try:
        joints = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1, 3)
    except (TypeError, ValueError):
        raise OpenPoseJsonError(f"{source}: pose_keypoints_2d must hold numbers only") from None
    return joints, layout


def read_openpose_json(path: str | Path, layout: str | None = None) -> tuple[np.ndarray, str | None]:
    """Read one OpenPose per-frame JSON file; see `parse_openpose_people` for the result and errors."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise OpenPoseJsonError(f"{path}: not valid JSON ({err}); expected an OpenPose --write_json file") from None
    return parse_openpose_people(obj, str(path), layout)


def frame_index_from_name(name: str | Path) -> int | None:
    """Frame number in an OpenPose file name (`video_000000000012_keypoints.json` -> 12), None when absent."""
    match = _INDEX.search(Path(name).name)
    if match is None:
        return None
    return int(match.group(1) or match.group(2))
