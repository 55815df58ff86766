"""Pre-normalisation, padding and bones of skeleton windows; the one normalisation training and live share.

A window is `(C, T, V, M)` float32 (channels, frames, joints, persons) as the reference tools write it; a batch is
`(N, C, T, V, M)`. numpy only: `realtime/` imports this module on machines without torch.

`pre_normalize` is spec §4.4 (2s-AGCN `pre_normalization`): loop padding, centring on a joint of the main person,
and for 3-D layouts two rotations (spine along +z, shoulders along +x). By default its quirks are fixed:

* a frame/joint is empty when all its values are zero (the reference tests a zero *sum*);
* the main person is the first non-empty slot, not slot 0 (a live window may lack person 0); the centre is taken
  per frame from the main person, carried over frames where its centre joint is missing;
* the reference frame for the rotations is the main person's first frame where the axis joints are present, and the
  rotation is one orthonormal frame: the spine lands exactly on +z and the shoulders in the x-z plane, pointing +x
  (the reference's second rotation disturbs the first).

`legacy=True` reproduces the reference exactly (3-D layouts). 2-D layouts `(x, y, score)` skip the rotations and
centre only x and y; the score channel is never shifted.

`PreprocessSpec` records what was applied; `PreprocessSpec.apply(window)` is called by gendata per sample and by
realtime per window, so both see the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .skeleton import Layout, get_layout

__all__ = [
    "PreprocessSpec", "pre_normalize", "loop_pad", "pad_frames", "bones", "merge_joints_bones",
    "rotation_joints", "PRE_NORMALIZATION_MODES", "BONE_MODES", "PADDING_MODES",
]

PRE_NORMALIZATION_MODES = ("none", "fixed", "legacy")
BONE_MODES = ("none", "only", "merge")
PADDING_MODES = ("loop", "zero")
_EPS = 1e-6

# Joints (bottom, top) aligned with +z and (right, left) aligned with +x, per 3-D layout (by joint name).
_ROTATION_JOINT_NAMES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "ntu25": (("spine_base", "spine_mid"), ("shoulder_right", "shoulder_left")),
    "kinect20": (("hip_center", "spine"), ("right_shoulder", "left_shoulder")),
    "florence15": (("spine", "neck"), ("right_shoulder", "left_shoulder")),
}


def rotation_joints(layout: Layout | str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Default (zaxis, xaxis) joint pairs of a layout: (0, 1) and (8, 4) for NTU-25; None where undefined or 2-D."""
    layout = get_layout(layout)
    names = _ROTATION_JOINT_NAMES.get(layout.name)
    if names is None or not layout.is_3d:
        return None, None
    return tuple(layout.index(j) for j in names[0]), tuple(layout.index(j) for j in names[1])  # type: ignore


def _coord_channels(layout: Layout) -> list[int]:
    return [i for i, c in enumerate(layout.channels) if c in ("x", "y", "z")]


def _check_window(data: np.ndarray, layout: Layout | None = None) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim not in (4, 5):
        raise ValueError(f"expected a window (C, T, V, M) or a batch (N, C, T, V, M), got shape {data.shape}")
    if layout is not None:
        c, v = data.shape[-4], data.shape[-2]
        if c != layout.num_channels or v != layout.num_joints:
            raise ValueError(f"layout {layout.name!r} expects C={layout.num_channels} channels {layout.channels} and "
                             f"V={layout.num_joints} joints, got a window of shape {data.shape} (C={c}, V={v})")
    return data


def pad_frames(data: np.ndarray, frames: int) -> np.ndarray:
    """Zero-pad (at the end) or truncate the T axis of a window or batch to `frames`."""
    data = _check_window(data)
    t = data.shape[-3]
    if t >= frames:
        return data[..., :frames, :, :]
    shape = list(data.shape)
    shape[-3] = frames - t
    return np.concatenate([data, np.zeros(shape, dtype=data.dtype)], axis=-3)


# --------------------------------------------------------------------------------------------- fixed mode


def _loop_index(present: np.ndarray) -> np.ndarray:
    """Source frame of every frame after loop padding one person, -1 for a frame left empty.

    `present` (T,) says which frames are non-empty. A person whose first frame is empty has its non-empty frames
    moved to the front; the empty frames after the last non-empty one repeat the frames before them cyclically.
    """
    t = len(present)
    idx = np.where(present, np.arange(t), -1)
    if not present.any():
        return idx
    if not present[0]:
        kept = np.flatnonzero(present)
        idx = np.full(t, -1)
        idx[: len(kept)] = kept
    end = int(np.flatnonzero(idx >= 0)[-1]) + 1
    if end < t:
        idx[end:] = idx[np.arange(end, t) % end]
    return idx


def _take_frames(person: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = person[np.maximum(idx, 0)]
    out[idx < 0] = 0
    return out


def _fill_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Forward-fill rows of `values` (T, D) where `valid` (T,) is False; leading gaps take the first valid row."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.flatnonzero(valid)[0])
    return values[idx]


def _frame_basis(spine: np.ndarray, shoulders: np.ndarray | None) -> np.ndarray | None:
    """Rotation (3, 3) whose rows are the new x, y, z axes: spine -> +z, shoulders -> x-z plane, +x."""
    norm = np.linalg.norm(spine)
    if norm < _EPS:
        return None
    ez = spine / norm
    if shoulders is not None:
        u = shoulders - np.dot(shoulders, ez) * ez
        if np.linalg.norm(u) > _EPS:
            ex = u / np.linalg.norm(u)
            return np.stack([ex, np.cross(ez, ex), ez])
    return _rotation_to(ez, np.array([0.0, 0.0, 1.0]))


def _rotation_to(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector v onto unit vector target (Rodrigues)."""
    axis = np.cross(v, target)
    s, c = np.linalg.norm(axis), float(np.dot(v, target))
    if s < _EPS:
        if c > 0:
            return np.eye(3)
        perp = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(v, perp)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)  # rotation by pi about axis
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def _fixed_sample(s: np.ndarray, layout: Layout, center: int, zaxis, xaxis, pad: bool) -> np.ndarray:
    """Fixed-mode pre-normalisation of one sample in (M, T, V, C) float64 (modified and returned)."""
    joint_present = np.any(s != 0, axis=-1)  # (M, T, V)
    frame_present = joint_present.any(axis=-1)  # (M, T)
    if not frame_present.any():
        return s
    if pad:
        for m in range(s.shape[0]):
            idx = _loop_index(frame_present[m])
            s[m], joint_present[m] = _take_frames(s[m], idx), _take_frames(joint_present[m], idx)
        frame_present = joint_present.any(axis=-1)
    coords = _coord_channels(layout)
    main = int(np.flatnonzero(frame_present.any(axis=1))[0])
    valid = joint_present[main, :, center]
    if valid.any():
        ref = _fill_missing(s[main, :, center][:, coords], valid)  # (T, len(coords))
        s[..., coords] -= ref[None, :, None, :]
        s[..., coords] *= joint_present[..., None]  # missing joints stay exactly zero
    if zaxis is None or len(coords) != 3:
        return s
    need = list(zaxis) + (list(xaxis) if xaxis is not None else [])
    frames = np.flatnonzero(joint_present[main][:, need].all(axis=-1))
    if len(frames) == 0 and xaxis is not None:
        frames, xaxis = np.flatnonzero(joint_present[main][:, list(zaxis)].all(axis=-1)), None
    if len(frames) == 0:
        return s
    f = s[main, frames[0]][:, coords]
    spine = f[zaxis[1]] - f[zaxis[0]]
    rot = _frame_basis(spine, None if xaxis is None else f[xaxis[0]] - f[xaxis[1]])
    if rot is not None:
        s[..., coords] = s[..., coords] @ rot.T
    return s


# -------------------------------------------------------------------------------------------- legacy mode


def _legacy_rotation_matrix(axis: np.ndarray, theta: float) -> np.ndarray:
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis) / math.sqrt(np.dot(axis, axis))
    a = math.cos(theta / 2.0)
    b, c, d = -axis * math.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def _legacy_angle(v1: np.ndarray, v2: np.ndarray) -> float:
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0.0
    v1_u, v2_u = v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    return float(np.arccos(np.clip(np.dot(v1_u, v2_u), -1.0, 1.0)))


def _legacy_pad(s: np.ndarray) -> None:
    """Reference step 1 on one sample (M, T, V, C), in place."""
    for person in s:
        if person.sum() == 0:
            continue
        if person[0].sum() == 0:
            tmp = person[person.sum(-1).sum(-1) != 0].copy()
            person *= 0
            person[: len(tmp)] = tmp
        for i_f in range(len(person)):
            if person[i_f].sum() == 0 and person[i_f:].sum() == 0:
                if i_f > 0:
                    person[i_f:] = person[np.arange(i_f, len(person)) % i_f]
                break


def _legacy_rotate(s: np.ndarray, coords: list[int], pair: tuple[int, int], target: list[float]) -> None:
    """Reference steps 3/4 on one sample (M, T, V, C), in place: align pair[1]-pair[0] of person 0, frame 0."""
    if s.sum() == 0:
        return
    vec = s[0, 0, pair[1]][coords] - s[0, 0, pair[0]][coords]
    rot = _legacy_rotation_matrix(np.cross(vec, target), _legacy_angle(vec, np.asarray(target)))
    for person in s:
        if person.sum() == 0:
            continue
        frames = person.reshape(len(person), -1).sum(-1) != 0
        xyz = np.ascontiguousarray(person[frames][..., coords], dtype=np.float64).reshape(-1, 3)
        # The reference rotates joint by joint (np.dot(matrix, joint)); one matrix-vector product per output axis
        # sums in the same order, whereas `xyz @ rot.T` (a matrix product) may not: its last-bit differences
        # survive the float32 cast where a coordinate nearly cancels (the spine after the z rotation).
        rotated = np.stack([np.dot(xyz, rot[i]) for i in range(3)], axis=-1)
        person[np.ix_(frames, np.arange(person.shape[1]), coords)] = \
            rotated.reshape(int(frames.sum()), person.shape[1], 3).astype(s.dtype)


def _legacy_sample(s: np.ndarray, layout: Layout, center: int, zaxis, xaxis, pad: bool) -> np.ndarray:
    """Reference pre_normalization of one sample (M, T, V, C) float32, in place (quirks included)."""
    if pad:
        _legacy_pad(s)
    if s.sum() == 0:
        return s
    coords = _coord_channels(layout)
    main_center = s[0][:, center: center + 1, :].copy()  # person 0, every frame (T, 1, C)
    for person in s:
        if person.sum() == 0:
            continue
        mask = (person.sum(-1) != 0)[..., None]
        person[..., coords] = (person[..., coords] - main_center[..., coords]) * mask
    if len(coords) == 3:
        if zaxis is not None:
            _legacy_rotate(s, coords, zaxis, [0, 0, 1])
        if xaxis is not None:
            _legacy_rotate(s, coords, (xaxis[1], xaxis[0]), [1, 0, 0])
    return s


# ------------------------------------------------------------------------------------------------ public


def pre_normalize(data: np.ndarray, layout: Layout | str = "ntu25", *, legacy: bool = False,
                  center_joint: int | None = None, rotate: bool = True, zaxis: tuple[int, int] | None = None,
                  xaxis: tuple[int, int] | None = None, pad: bool = True) -> np.ndarray:
    """Spec §4.4 pre-normalisation of a window (C, T, V, M) or a batch (N, C, T, V, M).

    Args:
        data: Joint coordinates in the layout's channels (metres for NTU; image units for 2-D layouts).
        layout: The skeleton layout (name or Layout): gives the centre joint, rotation joints and channels.
        legacy: Reproduce the reference exactly, quirks included (see the module docstring).
        center_joint: Joint subtracted from every person; default `layout.center` (spine middle for NTU).
        rotate: Apply the rotations (3-D layouts with x, y, z channels only).
        zaxis: (bottom, top) joints aligned with +z; default from the layout ((0, 1) for NTU-25).
        xaxis: (right, left) joints aligned with +x; default from the layout ((8, 4) for NTU-25).
        pad: Loop-pad each person (step 1).

    Returns:
        A new float32 array of the same shape.
    """
    layout = get_layout(layout)
    data = _check_window(data, layout)
    center = layout.center if center_joint is None else int(center_joint)
    default_z, default_x = rotation_joints(layout)
    zaxis = (zaxis or default_z) if rotate else None
    xaxis = (xaxis or default_x) if rotate else None
    batch = data if data.ndim == 5 else data[None]
    out = np.empty(batch.shape, dtype=np.float32)
    for n, sample in enumerate(batch):
        if legacy:
            s = np.ascontiguousarray(sample.transpose(3, 1, 2, 0), dtype=np.float32)  # (M, T, V, C)
            s = _legacy_sample(s, layout, center, zaxis, xaxis, pad)
        else:
            s = np.ascontiguousarray(sample.transpose(3, 1, 2, 0), dtype=np.float64)
            s = _fixed_sample(s, layout, center, zaxis, xaxis, pad)
        out[n] = s.transpose(3, 1, 2, 0)
    return out if data.ndim == 5 else out[0]


def loop_pad(data: np.ndarray, *, legacy: bool = False) -> np.ndarray:
    """Loop padding alone (spec §4.4 step 1) of a window or batch: trailing empty frames repeat the valid prefix.

    A person whose first frame is empty first has its non-empty frames moved to the front. Returns float32.
    """
    data = _check_window(data)
    batch = data if data.ndim == 5 else data[None]
    out = np.empty(batch.shape, dtype=np.float32)
    for n, sample in enumerate(batch):
        s = np.ascontiguousarray(sample.transpose(3, 1, 2, 0), dtype=np.float32)
        if legacy:
            _legacy_pad(s)
        else:
            for m in range(s.shape[0]):
                s[m] = _take_frames(s[m], _loop_index(np.any(s[m] != 0, axis=(-1, -2))))
        out[n] = s.transpose(3, 1, 2, 0)
    return out if data.ndim == 5 else out[0]


def bones(data: np.ndarray, layout: Layout | str, *, legacy: bool = False) -> np.ndarray:
    """Bone vectors of a window or batch: bone[v] = joint[v] - joint[layout.bone_parents[v]] (roots: zero).

    Coordinate channels (x, y, z) are differenced. A non-coordinate channel (a detection score) is, by default,
    the mean of the two joints' scores; `legacy=True` differences it too, as the reference Kinetics script does.
    """
    layout = get_layout(layout)
    data = _check_window(data, layout)
    parents = np.asarray(layout.bone_parents)
    out = (data - data[..., parents, :]).astype(np.float32)
    if not legacy:
        for c in range(layout.num_channels):
            if c not in _coord_channels(layout):
                ch = data[..., c, :, :, :] if data.ndim == 5 else data[c]
                mean = 0.5 * (ch + ch[..., parents, :])
                if data.ndim == 5:
                    out[:, c] = mean
                else:
                    out[c] = mean
    return out


def merge_joints_bones(joints: np.ndarray, bone_data: np.ndarray) -> np.ndarray:
    """Concatenate joints and bones along C: (x, y, z) + (bx, by, bz) -> 6 channels, as the reference merge."""
    if joints.shape != bone_data.shape:
        raise ValueError(f"joints and bones must have the same shape, got {joints.shape} and {bone_data.shape}")
    return np.concatenate([joints, bone_data], axis=-4).astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class PreprocessSpec:
    """What was applied to a window before the model; stored in gendata meta, checkpoints and bundles.

    Attributes:
        layout: Layout name (or a layout dict for user layouts) of the raw window.
        pre_normalization: `fixed` (spec §4.4, quirks fixed), `legacy` (the reference exactly) or `none`.
        center_joint: Joint index subtracted when centring; resolved to `layout.center` when None.
        rotate: Whether the 3-D rotations are applied (ignored for 2-D layouts).
        zaxis: (bottom, top) joints aligned with +z; resolved from the layout when None.
        xaxis: (right, left) joints aligned with +x; resolved from the layout when None.
        padding: `loop` (repeat the valid prefix) or `zero` for the empty frames at the end of a window.
        bones: `none` (joints), `only` (bone vectors) or `merge` (joints then bones along C).
        legacy_bones: Difference the score channel too (reference Kinetics bones).
        window: T, frames per window (300 for the reference's NTU/Kinetics data).
        fps: Frame rate the data was recorded at (NTU and Kinetics: 30), or None when unknown.
        persons: M, person slots per window.
        channels: Names of the output channels; derived from the layout and `bones` when empty.
    """

    layout: str | dict = "ntu25"
    pre_normalization: str = "fixed"
    center_joint: int | None = None
    rotate: bool = True
    zaxis: tuple[int, int] | None = None
    xaxis: tuple[int, int] | None = None
    padding: str = "loop"
    bones: str = "none"
    legacy_bones: bool = False
    window: int = 300
    fps: float | None = 30.0
    persons: int = 2
    channels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        bones_mode = {False: "none", True: "merge"}.get(self.bones, self.bones) \
            if isinstance(self.bones, bool) else self.bones
        object.__setattr__(self, "bones", bones_mode)
        for name, allowed in (("pre_normalization", PRE_NORMALIZATION_MODES), ("bones", BONE_MODES),
                              ("padding", PADDING_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PreprocessSpec.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if int(self.window) < 1 or int(self.persons) < 1:
            raise ValueError(f"PreprocessSpec: window and persons must be >= 1, got {self.window}, {self.persons}")
        layout = get_layout(self.layout)
        object.__setattr__(self, "_layout", layout)  # resolved once; not a field (eq, repr and to_dict ignore it)
        if self.center_joint is None:
            object.__setattr__(self, "center_joint", layout.center)
        if not 0 <= int(self.center_joint) < layout.num_joints:
            raise ValueError(f"PreprocessSpec.center_joint {self.center_joint} is not a joint of {layout.name!r}")
        default_z, default_x = rotation_joints(layout)
        for name, default in (("zaxis", default_z), ("xaxis", default_x)):
            value = getattr(self, name)
            value = default if value is None else tuple(int(j) for j in value)
            if value is not None and (len(value) != 2 or not all(0 <= j < layout.num_joints for j in value)):
                raise ValueError(f"PreprocessSpec.{name} must be two joint indices of {layout.name!r}, got {value}")
            object.__setattr__(self, name, value)
        derived = self._derive_channels(layout)
        if not self.channels:
            object.__setattr__(self, "channels", derived)
        elif tuple(self.channels) != derived:
            raise ValueError(f"PreprocessSpec.channels {tuple(self.channels)} do not match layout {layout.name!r} "
                             f"with bones={self.bones!r}: expected {derived}")
        object.__setattr__(self, "channels", tuple(self.channels))

    def _derive_channels(self, layout: Layout) -> tuple[str, ...]:
        bone_names = tuple(f"b{c}" for c in layout.channels)
        return {"none": layout.channels, "only": bone_names, "merge": layout.channels + bone_names}[self.bones]

    @property
    def layout_obj(self) -> Layout:
        """The resolved `Layout`."""
        return self._layout  # type: ignore[attr-defined]

    @property
    def in_channels(self) -> int:
        """C of the raw window `apply` expects."""
        return self.layout_obj.num_channels

    @property
    def out_channels(self) -> int:
        """C of the model input `apply` returns."""
        return len(self.channels)

    def apply(self, window: np.ndarray) -> np.ndarray:
        """Normalise one raw window (C, T, V, M) with T <= `window` -> model input (C', window, V, M) float32.

        Shorter windows are zero-padded at the end first (then loop-padded when `padding` is `loop`).
        """
        window = np.asarray(window)
        if window.ndim != 4:
            raise ValueError(f"PreprocessSpec.apply expects one window (C, T, V, M), got shape {window.shape}")
        return self._apply(window)

    apply_window = apply

    def apply_batch(self, batch: np.ndarray) -> np.ndarray:
        """`apply` on a batch (N, C, T, V, M)."""
        batch = np.asarray(batch)
        if batch.ndim != 5:
            raise ValueError(f"PreprocessSpec.apply_batch expects (N, C, T, V, M), got shape {batch.shape}")
        return self._apply(batch)

    def _apply(self, data: np.ndarray) -> np.ndarray:
        layout = self.layout_obj
        _check_window(data, layout)
        if data.shape[-1] != self.persons:
            raise ValueError(f"expected M={self.persons} person slots, got a window of shape {data.shape}")
        if data.shape[-3] > self.window:
            raise ValueError(f"expected at most T={self.window} frames, got a window of shape {data.shape}")
        x = pad_frames(data.astype(np.float32, copy=False), self.window)
        loop = self.padding == "loop"
        if self.pre_normalization != "none":
            x = pre_normalize(x, layout, legacy=self.pre_normalization == "legacy", center_joint=self.center_joint,
                              rotate=self.rotate, zaxis=self.zaxis, xaxis=self.xaxis, pad=loop)
        elif loop:
            x = loop_pad(x)
        if self.bones == "only":
            x = bones(x, layout, legacy=self.legacy_bones)
        elif self.bones == "merge":
            x = merge_joints_bones(x, bones(x, layout, legacy=self.legacy_bones))
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `PreprocessSpec.from_dict(spec.to_dict()) == spec`."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("zaxis", "xaxis", "channels"):
            d[key] = None if d[key] is None else list(d[key])
        layout = self.layout_obj
        d["layout"] = self.layout if isinstance(self.layout, str) else layout.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PreprocessSpec":
        """Build a spec from `to_dict` output; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown PreprocessSpec key(s) {unknown}; expected some of {sorted(known)}")
        kw = dict(d)
        for key in ("zaxis", "xaxis", "channels"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)
