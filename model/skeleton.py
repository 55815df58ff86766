"""Skeleton layouts as data: joint names, the graph tree, bones and left/right pairs.

numpy-free and torch-free on purpose: `realtime/` imports this on machines without torch.

A layout's tree is given by `parents` (one entry per joint, -1 for a root); every graph edge is
(child, parent), the convention of the reference ST-TR graphs (spec §1.11). `bone_parents` names
the joint each bone vector is taken against (bone[v] = joint[v] - joint[bone_parents[v]]); a root
points at itself, which gives a zero bone, exactly as the reference's bone scripts do (spec §4.5).
"""
from __future__ import annotations

import enum
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = [
    "Layout", "LAYOUTS", "get_layout", "load_layout", "register_layout",
    "NtuJoint", "OpenPose18Joint", "Coco17Joint", "Body25Joint", "MediaPipe33Joint", "Kinect20Joint",
    "Florence15Joint", "Natops8Joint",
]


@dataclass(frozen=True)
class Layout:
    """One skeleton layout.

    Attributes:
        name: Short identifier (`ntu25`, `openpose18`, ...).
        joints: Joint names, in the order of the V axis.
        parents: Graph parent of each joint (index), -1 for a root. Edges are (child, parent).
        center: Joint subtracted when centring a skeleton (spec §4.4 uses joint 1 for NTU and Kinetics).
        channels: Meaning of the C axis of a joint array, e.g. ("x", "y", "z") or ("x", "y", "score").
        mirror: Left/right joint pairs, swapped when a skeleton is mirrored.
        bone_parents: Joint each bone is taken against; defaults to `parents` with roots pointing at themselves.
        description: Free text: where the layout comes from, units.
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    center: int
    channels: tuple[str, ...] = ("x", "y", "z")
    mirror: tuple[tuple[int, int], ...] = ()
    bone_parents: tuple[int, ...] = field(default=())
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", tuple(str(j) for j in self.joints))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        object.__setattr__(self, "mirror", tuple((int(a), int(b)) for a, b in self.mirror))
        if not self.bone_parents:
            object.__setattr__(self, "bone_parents", tuple(v if p < 0 else p for v, p in enumerate(self.parents)))
        else:
            object.__setattr__(self, "bone_parents", tuple(int(p) for p in self.bone_parents))
        self._validate()

    def _validate(self) -> None:
        where = f"layout {self.name!r}"
        num = len(self.joints)
        if num == 0:
            raise ValueError(f"{where}: expected at least one joint")
        if len(set(self.joints)) != num:
            raise ValueError(f"{where}: joint names must be unique, got {self.joints}")
        for key in ("parents", "bone_parents"):
            values = getattr(self, key)
            if len(values) != num:
                raise ValueError(f"{where}: expected {num} {key} (one per joint), got {len(values)}")
            bad = [p for p in values if p < -1 or p >= num]
            if bad:
                raise ValueError(f"{where}: {key} must be joint indices in [0, {num}) or -1, got {bad}")
        if not any(p < 0 for p in self.parents):
            raise ValueError(f"{where}: expected at least one root (parent -1)")
        for v in range(num):  # every chain of parents must end at a root: no cycles
            seen, j = set(), v
            while self.parents[j] >= 0:
                if j in seen:
                    raise ValueError(f"{where}: parents form a cycle through joint {self.joints[j]!r}")
                seen.add(j)
                j = self.parents[j]
        if not 0 <= self.center < num:
            raise ValueError(f"{where}: center must be a joint index in [0, {num}), got {self.center}")
        for a, b in self.mirror:
            if not (0 <= a < num and 0 <= b < num) or a == b:
                raise ValueError(f"{where}: mirror pair ({a}, {b}) is not a pair of distinct joint indices")
        if not self.channels:
            raise ValueError(f"{where}: expected at least one channel name")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def is_3d(self) -> bool:
        """True when the coordinates are (x, y, z) rather than image (x, y[, score])."""
        return "z" in self.channels

    def edges(self) -> list[tuple[int, int]]:
        """Graph edges as (child, parent) pairs, in joint order."""
        return [(v, p) for v, p in enumerate(self.parents) if p >= 0]

    def index(self, joint: str) -> int:
        """Index of a joint by name; KeyError names the layout's joints when unknown."""
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"layout {self.name!r} has no joint {joint!r}; joints: {', '.join(self.joints)}") from None

    def mirror_permutation(self) -> list[int]:
        """Joint permutation that swaps left and right (identity for unpaired joints)."""
        perm = list(range(self.num_joints))
        for a, b in self.mirror:
            perm[a], perm[b] = b, a
        return perm

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "joints": list(self.joints), "parents": list(self.parents), "center": self.center,
            "channels": list(self.channels), "mirror": [list(p) for p in self.mirror],
            "bone_parents": list(self.bone_parents), "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Layout":
        """Build a layout from a dict (the form `to_dict` writes, or a user file).

        Accepts `parents` or `edges` (a list of [child, parent]; joints missing from it are roots),
        and joint names instead of indices anywhere an index is expected.
        """
        known = {"name", "joints", "parents", "edges", "center", "channels", "mirror", "bone_parents", "description"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown layout key(s) {unknown}; expected some of {sorted(known)}")
        for key in ("name", "joints", "center"):
            if key not in d:
                raise ValueError(f"layout definition is missing {key!r}")
        where = f"layout {d['name']!r}"

        def items(key: str, default: Any = ()) -> list:
            value = d.get(key, default)
            if isinstance(value, (str, bytes, Mapping, set, frozenset)) or not hasattr(value, "__len__"):
                raise ValueError(f"{where}: {key!r} must be a list, got {value!r}")
            return list(value)

        joints = [str(j) for j in items("joints")]

        def idx(x: Any, what: str, in_range: bool = False) -> int:
            """A joint name or an integer index (a range check here only where `_validate` would come too late)."""
            if isinstance(x, str):
                if x not in joints:
                    raise ValueError(f"{where}: unknown joint name {x!r} in {what}; joints: {', '.join(joints)}")
                return joints.index(x)
            if isinstance(x, bool) or not isinstance(x, numbers.Integral) or (in_range and not 0 <= x < len(joints)):
                root = " (or -1 / null for a root)" if what.startswith("parents") else ""
                raise ValueError(f"{where}: {what} must be a joint name or an index in [0, {len(joints)}){root}, "
                                 f"got {x!r}")
            return int(x)

        def pairs(key: str) -> list[tuple[int, int]]:
            out = []
            for i, pair in enumerate(items(key)):
                if isinstance(pair, (str, bytes, Mapping)) or not hasattr(pair, "__len__") or len(pair) != 2:
                    raise ValueError(f"{where}: each entry of {key!r} must be a pair [a, b], got {pair!r} at {i}")
                out.append((idx(pair[0], f"{key}[{i}]", True), idx(pair[1], f"{key}[{i}]", True)))
            return out

        if "parents" in d and "edges" in d:
            raise ValueError(f"{where}: give either 'parents' or 'edges', not both")
        if "parents" in d:
            parents = [-1 if p is None else idx(p, f"parents[{i}]") for i, p in enumerate(items("parents"))]
        elif "edges" in d:
            parents = [-1] * len(joints)
            for c, p in pairs("edges"):
                if parents[c] != -1:
                    raise ValueError(f"{where}: joint {joints[c]!r} has two parents; edges must form a tree")
                parents[c] = p
        else:
            raise ValueError(f"{where}: expected 'parents' or 'edges'")
        return cls(
            name=str(d["name"]), joints=tuple(joints), parents=tuple(parents), center=idx(d["center"], "center"),
            channels=tuple(str(c) for c in items("channels", ("x", "y", "z"))),
            mirror=tuple(pairs("mirror")),
            bone_parents=tuple(idx(p, f"bone_parents[{i}]") for i, p in enumerate(items("bone_parents"))),
            description=str(d.get("description", "")),
        )


def _joint_enum(name: str, joints: Sequence[str]) -> type[enum.IntEnum]:
    return enum.IntEnum(name, {j.upper(): i for i, j in enumerate(joints)})


# NTU RGB+D (Kinect v2), 25 joints, camera space in metres (spec §1.11). Root: spine at shoulders.
_NTU25 = (
    "spine_base", "spine_mid", "neck", "head", "shoulder_left", "elbow_left", "wrist_left", "hand_left",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right", "hip_left", "knee_left", "ankle_left", "foot_left",
    "hip_right", "knee_right", "ankle_right", "foot_right", "spine_shoulder", "hand_tip_left", "thumb_left",
    "hand_tip_right", "thumb_right",
)
# 1-based (child, parent) edges of the reference, including the hand tip -> thumb -> hand quirk.
_NTU25_EDGES_1B = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                   (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                   (23, 8), (24, 25), (25, 12))


def _parents_from_edges(num: int, edges: Sequence[tuple[int, int]], base: int = 0) -> tuple[int, ...]:
    parents = [-1] * num
    for child, parent in edges:
        parents[child - base] = parent - base
    return tuple(parents)


NTU25 = Layout(
    name="ntu25", joints=_NTU25, parents=_parents_from_edges(25, _NTU25_EDGES_1B, base=1), center=1,
    channels=("x", "y", "z"),
    mirror=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24)),
    description="NTU RGB+D / Kinect v2, 25 joints; camera space, metres (x right, y up, z away from the camera).",
)

# OpenPose COCO-18 as used by Kinetics-skeleton (spec §1.11). Root: neck. Channels (x, y, score).
_OP18 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
         "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
         "right_ear", "left_ear")
_OP18_EDGES = ((4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1),
               (0, 1), (15, 0), (14, 0), (17, 15), (16, 14))
OPENPOSE18 = Layout(
    name="openpose18", joints=_OP18, parents=_parents_from_edges(18, _OP18_EDGES), center=1,
    channels=("x", "y", "score"),
    mirror=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
    # Bone pairs of the reference Kinetics script: note neck -> nose, unlike the graph (spec §4.5).
    bone_parents=(0, 0, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15),
    description="OpenPose COCO-18 / Kinetics-skeleton; image coordinates (x, y) and detection score.",
)

# COCO-17 keypoints (e.g. MMPose, YOLO-pose). Rooted at the nose as pyskl's `coco` layout.
_COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
           "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
           "left_ankle", "right_ankle")
COCO17 = Layout(
    name="coco17", joints=_COCO17, parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14), center=0,
    channels=("x", "y", "score"),
    mirror=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    description="COCO-17 keypoints; image coordinates (x, y) and detection score.",
)

# OpenPose BODY_25. Root: neck.
_BODY25 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
           "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
           "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel",
           "right_big_toe", "right_small_toe", "right_heel")
BODY25 = Layout(
    name="body25", joints=_BODY25,
    parents=(1, -1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11), center=1,
    channels=("x", "y", "score"),
    mirror=((2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18), (19, 22), (20, 23), (21, 24)),
    description="OpenPose BODY_25; image coordinates (x, y) and detection score.",
)

# MediaPipe Pose (BlazePose GHUM), 33 landmarks. No neck or pelvis landmark: rooted at the nose.
_MP33 = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
         "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
         "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
         "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
         "left_heel", "right_heel", "left_foot_index", "right_foot_index")
MEDIAPIPE33 = Layout(
    name="mediapipe33", joints=_MP33,
    parents=(-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, 11, 12, 23, 24, 25, 26,
             27, 28, 27, 28),
    center=0, channels=("x", "y", "z"),
    mirror=((1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20), (21, 22),
            (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)),
    description="MediaPipe PoseLandmarker, 33 landmarks; world landmarks in metres, hip-centred.",
)

# Kinect v1, 20 joints, in the order of MSR Action3D's real-world files (Vemulapalli's body model).
_KINECT20 = ("left_shoulder", "right_shoulder", "neck", "spine", "left_hip", "right_hip", "hip_center", "left_elbow",
             "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand", "left_knee", "right_knee",
             "left_ankle", "right_ankle", "left_foot", "right_foot", "head")
KINECT20 = Layout(
    name="kinect20", joints=_KINECT20,
    # Rooted at the shoulder centre, as NTU-25 is rooted at the spine at the shoulders.
    parents=(2, 2, -1, 2, 6, 6, 3, 0, 1, 7, 8, 9, 10, 4, 5, 13, 14, 15, 16, 2), center=3,
    channels=("x", "y", "z"),
    mirror=((0, 1), (4, 5), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18)),
    description="Kinect v1, 20 joints, MSR Action3D order; metres, y up, z depth.",
)

# Florence 3D Actions, 15 joints (the dataset README order).
_FLORENCE15 = ("head", "neck", "spine", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
               "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")
FLORENCE15 = Layout(
    name="florence15", joints=_FLORENCE15, parents=(1, -1, 1, 1, 3, 4, 1, 6, 7, 2, 9, 10, 2, 12, 13), center=2,
    channels=("x", "y", "z"),
    mirror=((3, 6), (4, 7), (5, 8), (9, 12), (10, 13), (11, 14)),
    description="Florence 3D Actions (Kinect v1), 15 joints; metres.",
)

# NATOPS (UEA archive): 8 disconnected arm/hand markers; two arm chains rooted at the elbows.
_NATOPS8 = ("hand_tip_left", "hand_tip_right", "elbow_left", "elbow_right", "wrist_left", "wrist_right",
            "thumb_left", "thumb_right")
NATOPS8 = Layout(
    name="natops8", joints=_NATOPS8, parents=(4, 5, -1, -1, 2, 3, 4, 5), center=2,
    channels=("x", "y", "z"),
    mirror=((0, 1), (2, 3), (4, 5), (6, 7)),
    description="NATOPS markers (UEA archive): elbow-wrist-hand tip and wrist-thumb chains per arm.",
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (NTU25, OPENPOSE18, COCO17, BODY25, MEDIAPIPE33, KINECT20, FLORENCE15, NATOPS8)
}
BUILTIN_LAYOUTS = frozenset(LAYOUTS)
_ALIASES = {"kinetics18": "openpose18", "coco18": "openpose18", "ntu": "ntu25", "kinetics": "openpose18",
            "msr_action3d": "kinect20"}

NtuJoint = _joint_enum("NtuJoint", _NTU25)
OpenPose18Joint = _joint_enum("OpenPose18Joint", _OP18)
Coco17Joint = _joint_enum("Coco17Joint", _COCO17)
Body25Joint = _joint_enum("Body25Joint", _BODY25)
MediaPipe33Joint = _joint_enum("MediaPipe33Joint", _MP33)
Kinect20Joint = _joint_enum("Kinect20Joint", _KINECT20)
Florence15Joint = _joint_enum("Florence15Joint", _FLORENCE15)
Natops8Joint = _joint_enum("Natops8Joint", _NATOPS8)


def load_layout(path: str | Path) -> Layout:
    """Read a user-declared layout from a YAML or JSON file (see `Layout.from_dict` for the keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"layout file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"layout file {path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # a declared dependency; only needed for YAML layouts

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"layout file {path}: not valid YAML ({' '.join(str(err).split())})") from None
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"layout file {path}: not valid JSON ({err})") from None
    else:
        raise ValueError(f"layout file {path}: expected a .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise ValueError(f"layout file {path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Layout.from_dict(data)
    except ValueError as err:
        raise ValueError(f"layout file {path}: {err}") from None


def register_layout(layout: Layout) -> Layout:
    """Make a user layout available to `get_layout` by name (refuses to replace a built-in one)."""
    if layout.name in LAYOUTS and LAYOUTS[layout.name] != layout:
        raise ValueError(f"a different layout named {layout.name!r} is already registered")
    LAYOUTS[layout.name] = layout
    return layout


def layout_reference(layout: str | Path | Layout | Mapping[str, Any]) -> str | dict[str, Any]:
    """How a file names a layout: a built-in one by name, any other by its whole definition, so that generated
    data, checkpoints and bundles of a user layout can be read where its YAML/JSON file is not at hand."""
    layout = get_layout(layout)
    if layout.name in BUILTIN_LAYOUTS and LAYOUTS[layout.name] == layout:
        return layout.name
    return layout.to_dict()


def get_layout(spec: str | Path | Layout | Mapping[str, Any]) -> Layout:
    """Resolve a layout from a name, an alias, a YAML/JSON file path, a dict or a Layout."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, Mapping):
        return Layout.from_dict(spec)
    name = str(spec)
    if name in LAYOUTS:  # a user layout registered as "MyHand" is found by that name, too
        return LAYOUTS[name]
    key = _ALIASES.get(name.lower(), name.lower())
    if key in LAYOUTS:
        return LAYOUTS[key]
    if Path(name).suffix.lower() in (".yaml", ".yml", ".json"):
        return load_layout(name)
    raise KeyError(f"unknown skeleton layout {name!r}; known: {', '.join(sorted(LAYOUTS))} "
                   f"(aliases: {', '.join(sorted(_ALIASES))}), or a path to a .yaml/.json layout file")
