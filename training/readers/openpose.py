"""A folder of OpenPose `--write_json` per-frame files -> one skeleton sequence, frames in index order."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sttr.model.openpose_json import OpenPoseJsonError, frame_index_from_name, read_openpose_json

__all__ = ["OpenPoseSequence", "read_openpose_folder"]


@dataclass
class OpenPoseSequence:
    """Per-frame OpenPose output of one video.

    Attributes:
        folder: The folder read.
        joints: float32 (T, P, V, 3) x, y (pixels as written) and score; P = most people in any frame, persons in
            file order per frame (OpenPose has no identities), zeros where absent.
        frame_indices: int64 (T,) frame number of each row (from the file names; row order when they have none).
        layout: `body25` or `openpose18`; None when no frame has anybody.
    """

    folder: Path
    joints: np.ndarray
    frame_indices: np.ndarray
    layout: str | None


def _sort_key(path: Path) -> tuple[int, str]:
    index = frame_index_from_name(path)
    return (index if index is not None else -1, path.name)


def read_openpose_folder(folder: str | Path, layout: str | None = None) -> OpenPoseSequence:
    """Read every `*.json` in a folder, ordered by the frame number in the file name.

    Args:
        folder: The `--write_json` output folder of one video.
        layout: Expected layout; detected from the first person found when None. Mixed layouts are an error.

    Raises:
        FileNotFoundError: the folder does not exist or holds no `.json` file.
        OpenPoseJsonError: a malformed file (the message names it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"OpenPose JSON folder {folder} does not exist")
    files = sorted(folder.glob("*.json"), key=_sort_key)
    if not files:
        raise FileNotFoundError(f"{folder}: expected OpenPose per-frame *.json files, found none")
    frames = []
    for path in files:
        people, found = read_openpose_json(path, layout)
        layout = layout or found
        frames.append(people)
    joints_per_person = max((f.shape[1] for f in frames), default=0)
    max_people = max(len(f) for f in frames)
    joints = np.zeros((len(frames), max_people, joints_per_person, 3), dtype=np.float32)
    for t, people in enumerate(frames):
        if len(people):
            joints[t, : len(people)] = people
    named = [frame_index_from_name(p) for p in files]
    indices = np.array([i if i is not None else t for t, i in enumerate(named)], dtype=np.int64)
    if len(set(indices.tolist())) != len(indices):
        raise OpenPoseJsonError(f"{folder}: two files carry the same frame number; expected one file per frame")
    return OpenPoseSequence(folder, joints, indices, layout)
