"""Skeleton augmentations on one sample (C, T, V, M) float32, numpy only, every random draw from a given Generator.

Spec §4.7 describes the reference's augmentations and §9 (bugs 6, 19) what was wrong with them; here:
* 3-D rotation (about any of x, y, z), isotropic scale and translation, applied consistently to every spatial
  channel group: joint positions are rotated, scaled and shifted; bone vectors (joint minus parent) are rotated and
  scaled but never shifted, which keeps them equal to the differences of the transformed joints.
* Mirroring negates x and swaps left/right joints (`Layout.mirror`); bones stay consistent when the layout's bone tree
  is left/right symmetric (checked by `check_mirror_consistent`).
* Absent joints (all position channels exactly 0) stay 0: only translation could move them, and it skips them.
* Temporal: a random contiguous window (the reference's random_choose, on the valid frames) or a random crop of a
  fraction of the valid frames resized to the window; at test time the valid frames are resized deterministically.

Channel roles come from channel names: `x`, `y`, `z` are positions; `bx`, `by`, `bz` (or `bone_x`...) are vectors
of one bone group; anything else (e.g. `score`) is left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sttr.model.skeleton import Layout

__all__ = [
    "ChannelGroups", "channel_groups", "check_mirror_consistent", "rotation_matrix", "random_rotation",
    "rotate_scale", "shift", "mirror", "valid_range", "random_window", "crop_resize", "resize_valid", "Augmenter",
]

_AXES = "xyz"


@dataclass(frozen=True)
class ChannelGroups:
    """Spatial channel groups of a sample.

    Attributes:
        positions: Channel index of each axis ("x", "y"[, "z"]) of the joint positions; empty if none.
        vectors: For each vector group (bones, motion), the channel index of each axis in the same order.
    """

    positions: tuple[int, ...]
    vectors: tuple[tuple[int, ...], ...] = ()

    @property
    def num_axes(self) -> int:
        return len(self.positions) if self.positions else (len(self.vectors[0]) if self.vectors else 0)


def channel_groups(names: Sequence[str]) -> ChannelGroups:
    """Find position and vector channel groups from channel names.

    Args:
        names: One name per channel, e.g. ("x", "y", "z", "bx", "by", "bz") or ("x", "y", "score").

    Raises:
        ValueError: if a group lacks an axis the positions have (e.g. "bx", "by" without "bz" for 3-D data).
    """
    names = [str(n).lower() for n in names]
    pos = tuple(names.index(a) for a in _AXES if a in names)
    prefixes = sorted({n[: -1] for n in names if len(n) > 1 and n[-1] in _AXES and n[:-1] not in ("",)})
    vectors = []
    for prefix in prefixes:
        group = tuple(names.index(prefix + a) for a in _AXES if prefix + a in names)
        if pos and len(group) != len(pos):
            raise ValueError(f"channel group {prefix!r} has {len(group)} axes, positions have {len(pos)}: {names}")
        vectors.append(group)
    return ChannelGroups(positions=pos, vectors=tuple(vectors))


def check_mirror_consistent(layout: Layout) -> None:
    """Raise ValueError if swapping the layout's left/right joints does not map its bone tree onto itself."""
    perm = layout.mirror_permutation()
    bad = [layout.joints[v] for v in range(layout.num_joints)
           if layout.bone_parents[perm[v]] != perm[layout.bone_parents[v]]]
    if bad:
        raise ValueError(f"layout {layout.name!r}: mirroring is inconsistent with the bone tree at joints {bad}; "
                         "bones cannot be mirrored without recomputing them")


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """(3, 3) rotation R = Rz @ Ry @ Rx for angles (about x, y, z) in degrees; applied as p' = R p."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(rng: np.random.Generator, max_deg: float, axes: str = "xyz") -> np.ndarray:
    """(3, 3) rotation with an angle uniform in [-max_deg, max_deg] about each axis in `axes`."""
    angles = [rng.uniform(-max_deg, max_deg) if a in axes else 0.0 for a in _AXES]
    return rotation_matrix(angles)


def _linear(data: np.ndarray, groups: ChannelGroups, matrix: np.ndarray) -> np.ndarray:
    out = data.copy()
    k = groups.num_axes
    m = matrix[:k, :k].astype(np.float32)
    for idx in ([groups.positions] if groups.positions else []) + list(groups.vectors):
        out[list(idx)] = np.einsum("ij,jtvm->itvm", m, data[list(idx)])
    return out


def rotate_scale(data: np.ndarray, groups: ChannelGroups, rotation: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Rotate (about the origin) and scale every spatial group; zeros stay zeros. 2-D data uses R's upper-left 2x2,
    so pass a rotation about z only for image coordinates."""
    return _linear(data, groups, np.asarray(rotation, dtype=np.float64) * scale)


def absent(data: np.ndarray, groups: ChannelGroups) -> np.ndarray:
    """(T, V, M) bool: joints whose position channels (all channels, without positions) are exactly zero."""
    idx = list(groups.positions) if groups.positions else list(range(data.shape[0]))
    return np.all(data[idx] == 0, axis=0)


def shift(data: np.ndarray, groups: ChannelGroups, offset: Sequence[float]) -> np.ndarray:
    """Translate joint positions by `offset` (one value per position axis), leaving absent joints at zero."""
    out = data.copy()
    if not groups.positions:
        return out
    keep = ~absent(data, groups)
    for axis, c in enumerate(groups.positions):
        out[c] = np.where(keep, data[c] + np.float32(offset[axis]), data[c])
    return out


def mirror(data: np.ndarray, groups: ChannelGroups, layout: Layout) -> np.ndarray:
    """Mirror left/right: negate every x channel and swap the layout's left/right joints."""
    perm = layout.mirror_permutation()
    if data.shape[2] != len(perm):
        raise ValueError(f"mirror: data has {data.shape[2]} joints, layout {layout.name!r} has {len(perm)}")
    out = data[:, :, perm, :].copy()
    for idx in ([groups.positions] if groups.positions else []) + list(groups.vectors):
        out[idx[0]] *= -1
    return out


def valid_range(data: np.ndarray) -> tuple[int, int]:
    """[first, last + 1) of the frames holding any non-zero value; (0, 0) for an all-zero sample."""
    nonzero = np.flatnonzero(np.any(data != 0, axis=(0, 2, 3)))
    if nonzero.size == 0:
        return 0, 0
    return int(nonzero[0]), int(nonzero[-1]) + 1


def random_window(data: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random contiguous window of `size` frames of the valid frames; shorter clips are zero-padded around a
    random offset (the reference's random_choose, restricted to valid frames)."""
    first, last = valid_range(data)
    length = last - first
    C, _, V, M = data.shape
    if length >= size:
        start = first + int(rng.integers(0, length - size + 1))
        return np.ascontiguousarray(data[:, start:start + size])
    out = np.zeros((C, size, V, M), dtype=data.dtype)
    offset = int(rng.integers(0, size - length + 1))
    out[:, offset:offset + length] = data[:, first:last]
    return out


def _resize(clip: np.ndarray, size: int, groups: ChannelGroups) -> np.ndarray:
    """Linear resampling of (C, L, V, M) to (C, size, V, M); a joint absent at either neighbour stays absent."""
    length = clip.shape[1]
    if length == size:
        return np.ascontiguousarray(clip)
    if length == 1:
        return np.repeat(clip, size, axis=1)
    pos = np.linspace(0, length - 1, size)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, length - 1)
    w = (pos - lo).astype(np.float32)[None, :, None, None]
    out = clip[:, lo] * (1 - w) + clip[:, hi] * w
    gone = absent(clip, groups)
    out[:, gone[lo] | (gone[hi] & (w[0] > 0))] = 0
    return out.astype(clip.dtype)


def crop_resize(data: np.ndarray, size: int, ratio: Sequence[float], rng: np.random.Generator,
                groups: ChannelGroups) -> np.ndarray:
    """Keep a random contiguous fraction (uniform in `ratio`) of the valid frames and resize it to `size` frames."""
    first, last = valid_range(data)
    length = last - first
    if length == 0:
        return np.zeros(data.shape[:1] + (size,) + data.shape[2:], dtype=data.dtype)
    keep = min(length, max(2, int(round(length * rng.uniform(ratio[0], ratio[1])))))
    start = first + int(rng.integers(0, length - keep + 1))
    return _resize(data[:, start:start + keep], size, groups)


def resize_valid(data: np.ndarray, size: int, groups: ChannelGroups) -> np.ndarray:
    """Deterministic test-time counterpart of `crop_resize`: all valid frames resized to `size`."""
    first, last = valid_range(data)
    if last - first == 0:
        return np.zeros(data.shape[:1] + (size,) + data.shape[2:], dtype=data.dtype)
    if first == 0 and last == data.shape[1] == size:
        return data
    return _resize(data[:, first:last], size, groups)


class Augmenter:
    """Applies the configured augmentations in a fixed order: temporal, mirror, rotate + scale, shift.

    Args:
        config: An `AugmentConfig` (rotate, rotate_axes, scale, shift, mirror, crop, random_window).
        layout: The data's skeleton layout (mirror pairs).
        channel_names: Names of the data's channels (see `channel_groups`).
        window: Output frame count for the temporal augmentations (None keeps T).
    """

    def __init__(self, config, layout: Layout, channel_names: Sequence[str], window: int | None = None):
        self.config = config
        self.layout = layout
        self.groups = channel_groups(channel_names)
        self.window = window
        if config.mirror and not layout.mirror:
            raise ValueError(f"augment.mirror is set but layout {layout.name!r} declares no left/right pairs")
        if config.mirror and self.groups.vectors:
            check_mirror_consistent(layout)
        if (config.rotate or config.scale or config.shift or config.mirror) and not self.groups.positions \
                and not self.groups.vectors:
            raise ValueError(f"spatial augmentation needs x/y[/z] channels, got channels {list(channel_names)}")

    def temporal(self, data: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Crop/window to `window` frames (random when rng is given, deterministic resize otherwise)."""
        size = self.window or data.shape[1]
        if rng is None:
            return resize_valid(data, size, self.groups) if self.window else data
        if self.config.crop:
            return crop_resize(data, size, self.config.crop, rng, self.groups)
        if self.config.random_window:
            return random_window(data, size, rng)
        return resize_valid(data, size, self.groups) if self.window else data

    def __call__(self, data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        data = self.temporal(data, rng)
        if cfg.mirror and rng.random() < cfg.mirror:
            data = mirror(data, self.groups, self.layout)
        if cfg.rotate or cfg.scale:
            axes = cfg.rotate_axes if self.groups.num_axes == 3 else "z"
            rot = random_rotation(rng, cfg.rotate, axes) if cfg.rotate else np.eye(3)
            factor = rng.uniform(1 - cfg.scale, 1 + cfg.scale) if cfg.scale else 1.0
            data = rotate_scale(data, self.groups, rot, factor)
        if cfg.shift and self.groups.positions:
            data = shift(data, self.groups, rng.uniform(-cfg.shift, cfg.shift, size=len(self.groups.positions)))
        return np.ascontiguousarray(data, dtype=np.float32)
