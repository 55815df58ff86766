"""NTU RGB+D `.skeleton` text files (spec §4.1) and their `SsssCcccPpppRrrrAaaa` names.

A file is: the frame count; then per frame the body count and per body a 10-field info line (the first field a
17-digit body id), the joint count (25) and one 12-field line per joint (x, y, z in metres, camera space, then
depth/colour pixels, orientation and tracking state). CRLF and LF line endings are both accepted; any number of
bodies per frame, including none. A truncated or malformed file raises `SkeletonFormatError` naming the file and
the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NtuSampleId", "NtuSkeleton", "SkeletonFormatError", "parse_sample_name", "read_skeleton",
           "NTU_NAME_PATTERN"]

NTU_NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_BODY_FIELDS = 10
_JOINT_FIELDS = 12


class SkeletonFormatError(ValueError):
    """A `.skeleton` file does not follow the NTU format; the message names the file and line."""


@dataclass(frozen=True)
class NtuSampleId:
    """The ids encoded in an NTU sample name. `action` is 1-based as in the name; `label` = action - 1."""

    name: str
    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        return self.action - 1


def parse_sample_name(name: str | Path) -> NtuSampleId:
    """Parse `S001C002P003R002A013[.skeleton]` (a path is fine) into its ids.

    Raises:
        ValueError: when the name does not contain the NTU pattern.
    """
    stem = Path(name).name
    match = NTU_NAME_PATTERN.search(stem)
    if match is None:
        raise ValueError(f"{name!s}: expected an NTU sample name like S001C002P003R002A013, got {stem!r}")
    setup, camera, subject, replication, action = (int(g) for g in match.groups())
    return NtuSampleId(match.group(0), setup, camera, subject, replication, action)


@dataclass
class NtuSkeleton:
    """One parsed `.skeleton` file.

    Attributes:
        path: The file read.
        joints: float32 (F, B, V, 3) (the `dtype` asked for) x, y, z in metres, camera space; B = most bodies in
            any frame; body slot = order within the frame (as the reference); zeros where a frame has fewer bodies.
        body_ids: int64 (F, B) body (tracking) ids, -1 where there is no body.
        tracking: int8 (F, B, V) joint tracking state (0 not tracked, 1 inferred, 2 tracked), -1 where no body.
    """

    path: Path
    joints: np.ndarray
    body_ids: np.ndarray
    tracking: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def bodies_per_frame(self) -> np.ndarray:
        """(F,) number of bodies in each frame."""
        return (self.body_ids >= 0).sum(axis=1)

    def by_body_id(self) -> np.ndarray:
        """Joints re-slotted by body id (slot = order of first appearance): (F, num_ids, V, 3) float32."""
        ids = [i for i in dict.fromkeys(self.body_ids[self.body_ids >= 0].tolist())]
        out = np.zeros((self.num_frames, len(ids), self.joints.shape[2], 3), dtype=np.float32)
        slot = {body: k for k, body in enumerate(ids)}
        for f, b in zip(*np.nonzero(self.body_ids >= 0)):
            out[f, slot[int(self.body_ids[f, b])]] = self.joints[f, b]
        return out


class _Lines:
    """Line cursor that names the file and the 1-based line in its errors."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines, self.pos = path, text.splitlines(), 0
        while self.lines and not self.lines[-1].strip():  # trailing blank lines are harmless
            self.lines.pop()

    def error(self, what: str, line: int | None = None) -> SkeletonFormatError:
        line = self.pos if line is None else line
        return SkeletonFormatError(f"{self.path}: line {line}: {what}")

    def next(self, what: str) -> list[str]:
        if self.pos >= len(self.lines):
            raise self.error(f"file ends early (truncated?): expected {what}", len(self.lines) + 1)
        self.pos += 1
        return self.lines[self.pos - 1].split()

    def count(self, what: str) -> int:
        fields = self.next(what)
        if len(fields) != 1 or not fields[0].isdigit():
            raise self.error(f"expected {what} (one non-negative integer), got {' '.join(fields)[:60]!r}")
        return int(fields[0])

    def block(self, n: int, width: int, what: str) -> np.ndarray:
        """The next n lines of `width` numbers each, as float64 (n, width)."""
        start = self.pos
        if start + n > len(self.lines):
            raise self.error(f"file ends early (truncated?): expected {n} {what} lines", len(self.lines) + 1)
        self.pos += n
        rows = [line.split() for line in self.lines[start: start + n]]
        for k, fields in enumerate(rows):
            if len(fields) != width:
                raise self.error(f"expected {width} numbers ({what}), got {len(fields)}", start + k + 1)
        try:
            return np.array(rows, dtype=np.float64)
        except ValueError:
            for k, fields in enumerate(rows):  # slow path: find the line with the non-number
                try:
                    [float(x) for x in fields]
                except ValueError:
                    raise self.error(f"expected {width} numbers ({what}), got {' '.join(fields)[:60]!r}",
                                     start + k + 1) from None
            raise


def _read_body(cur: _Lines) -> tuple[int, np.ndarray]:
    info = cur.next("a body info line")
    if len(info) != _BODY_FIELDS:
        raise cur.error(f"expected a body info line of {_BODY_FIELDS} fields, got {len(info)}")
    try:
        body_id = int(info[0])
    except ValueError:
        raise cur.error(f"expected an integer body id, got {info[0]!r}") from None
    num_joints = cur.count("the joint count")
    return body_id, cur.block(num_joints, _JOINT_FIELDS, "joint")


def read_skeleton(path: str | Path, num_joints: int = 25, dtype: Any = np.float32) -> NtuSkeleton:
    """Read one NTU `.skeleton` file.

    Args:
        path: The file.
        num_joints: Joints per body expected (25 for Kinect v2); another count is a format error.
        dtype: Of `joints`. float64 keeps the text's numbers exactly (the reference ranks bodies by motion energy
            computed on them, and rounds to float32 only when it stores the sample).

    Raises:
        SkeletonFormatError: truncated file, wrong field counts, non-numbers, or trailing data.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    cur = _Lines(path, path.read_text(encoding="ascii", errors="replace"))
    num_frames = cur.count("the frame count")
    frames: list[list[tuple[int, np.ndarray]]] = []
    for _ in range(num_frames):
        bodies = []
        for _ in range(cur.count("the body count")):
            body_id, joints = _read_body(cur)
            if len(joints) != num_joints:
                raise cur.error(f"expected {num_joints} joints per body, got {len(joints)}", cur.pos - len(joints))
            bodies.append((body_id, joints))
        frames.append(bodies)
    extra = [k for k in range(cur.pos, len(cur.lines)) if cur.lines[k].strip()]
    if extra:
        raise cur.error(f"unexpected data after the {num_frames} frames announced on line 1", extra[0] + 1)
    max_bodies = max((len(b) for b in frames), default=0)
    xyz = np.zeros((num_frames, max_bodies, num_joints, 3), dtype=dtype)
    ids = np.full((num_frames, max_bodies), -1, dtype=np.int64)
    tracking = np.full((num_frames, max_bodies, num_joints), -1, dtype=np.int8)
    for f, bodies in enumerate(frames):
        for b, (body_id, joints) in enumerate(bodies):
            xyz[f, b], ids[f, b], tracking[f, b] = joints[:, :3], body_id, joints[:, 11]
    return NtuSkeleton(path, xyz, ids, tracking)
