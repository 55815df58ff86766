"""Layout adapters: a pose source's skeleton -> the joint order, axes and normalisation a model was trained on.

Every adapter is a fixed linear map over joints (each target joint is a weighted sum of source joints, so
derived joints such as NTU's spine base are plain means) followed by an axis change (3D) or the Kinetics-skeleton
normalisation (2D). A target joint's score is the smallest score among the source joints it is made of.

Coordinates
-----------
*3D targets* (`ntu25`, `kinect20`) take MediaPipe **world** landmarks (metres, origin midway between the hips).
MediaPipe world axes follow the image: x to the image right, y down, z away from the camera (we checked this on
real video: the nose has negative y, shoulders keep the same x order in world and image landmarks, and the nose
has negative z when the person faces the camera). NTU RGB+D stores Kinect v2 camera space: y up, z away from
the sensor, and x towards the sensor's left, i.e. towards the right side of a person facing the camera
(in the NTU sample S001C001P001R001A001 the right shoulder has the larger x; the reference pre-normalisation
also turns right shoulder - left shoulder onto +x). A MediaPipe image of a person facing the camera shows
their right shoulder on the image left (smaller x), so::

    x_ntu = -x_mp,   y_ntu = -y_mp,   z_ntu = z_mp        (a 180 degree turn about z; no mirroring)

Left stays left: the person's left shoulder becomes NTU `shoulder_left`. Checked against real data: MediaPipe on
the RGB clip of NTU sample S001C001P001R001A001, adapted, agrees with that take's Kinect skeleton to about 0.1 m per
joint (spine-base centred), drinking hand included. NTU's RGB clips are mirrored (Kinect v2 colour), so they must
be un-mirrored first (`VideoCapture(mirror=True)`); a mirrored image swaps MediaPipe's left and right.
The origin stays between the hips (NTU puts it at the sensor); the model's pre-normalisation centres every
skeleton anyway. MSR Action3D (`kinect20`, Kinect v1) uses the same camera axes (its real-world files put the
right shoulder at the larger x, y up, z depth), so it gets the same turn.

*2D targets* (`openpose18`, `coco17`) take image coordinates normalised by the image size ([0, 1], y down;
pass `image_size=(width, height)` when the source gives pixels) and return them the way Kinetics-skeleton
stores them (spec §4.6): x - 0.5, -(y - 0.5), and x = y = 0 where the score is 0 (or below `min_score`).

MediaPipe-33 -> NTU-25 (Kinect v2)
----------------------------------
=====================  =========================================================================
NTU joint              from MediaPipe (`L`/`R` = left/right; ratios measured on the NTU samples)
=====================  =========================================================================
 0 spine_base          mean(L hip, R hip)
 1 spine_mid           spine_base + 0.57 * (spine_shoulder - spine_base)
 2 neck                spine_shoulder + 0.35 * (head - spine_shoulder)
 3 head                mean(L ear, R ear)  (the centre of the head, as Kinect places it)
 4 / 8 shoulder L / R  L / R shoulder
 5 / 9 elbow L / R     L / R elbow
 6 / 10 wrist L / R    L / R wrist
 7 / 11 hand L / R     mean(wrist, index knuckle, pinky knuckle) of that side (palm centre)
12 / 16 hip L / R      L / R hip
13 / 17 knee L / R     L / R knee
14 / 18 ankle L / R    L / R ankle
15 / 19 foot L / R     L / R foot index (toes)
20 spine_shoulder      mean(L shoulder, R shoulder)
21 / 23 hand_tip L / R hand + 0.85 * (hand - wrist) of that side (Kinect tips sit ~0.85 palm lengths on)
22 / 24 thumb L / R    L / R thumb
=====================  =========================================================================

MediaPipe-33 -> Kinect-v1-20 (MSR Action3D order)
-------------------------------------------------
shoulders, elbows, wrists, hips, knees, ankles: the same-named landmark; `neck` (Kinect v1 shoulder centre) =
mean(shoulders); `hip_center` = mean(hips); `spine` = hip_center + 0.57 * (neck - hip_center); `hand` = palm
centre as above; `foot` = foot index; `head` = mean(ears).

MediaPipe-33 -> OpenPose-18 (Kinetics)
--------------------------------------
nose <- nose, neck <- mean(L shoulder, R shoulder), R/L shoulder, elbow, wrist, hip, knee, ankle <- the same
landmark, R/L eye <- R/L eye, R/L ear <- R/L ear. Scores: MediaPipe visibility.

MediaPipe-33 -> COCO-17: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles, by name.

BODY_25 -> OpenPose-18: BODY_25 joints 0-7 keep their index (nose, neck, R/L arm); R hip, knee, ankle <- 9, 10, 11;
L hip, knee, ankle <- 12, 13, 14; R/L eye <- 15/16; R/L ear <- 17/18; mid-hip and feet are dropped.

COCO-18 (OpenPose `COCO` model, layout `openpose18`) -> OpenPose-18: identity joint order, normalised.
Identity adapters also exist for every 3D layout (`ntu25 -> ntu25`, ...), for sources already in model layout.

numpy only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np

from sttr.model.skeleton import get_layout

from .frame import SkeletonFrame

__all__ = ["Adapter", "UnsupportedAdapterError", "adapter_for", "supported_pairs", "coordinates_for",
           "kinetics_normalize"]

logger = logging.getLogger(__name__)

SPINE_MID_RATIO = 0.57  # spine_mid along spine_base -> spine_shoulder (median over the NTU samples)
NECK_RATIO = 0.35  # neck along spine_shoulder -> head (median over the NTU samples)
HAND_TIP_RATIO = 0.85  # |hand tip - hand| / |hand - wrist| (median over the NTU samples)

# MediaPipe world/image axes -> Kinect camera axes (module docstring): flip x and y, keep z.
MP_TO_KINECT_AXES = np.array([-1.0, -1.0, 1.0], dtype=np.float32)

Recipe = Mapping[str, float]  # source joint name -> weight


def _mean(*names: str) -> dict[str, float]:
    return {n: 1.0 / len(names) for n in names}


def _lerp(a: Recipe, b: Recipe, t: float) -> dict[str, float]:
    """Recipe for a + t * (b - a)."""
    out: dict[str, float] = {}
    for name, w in a.items():
        out[name] = out.get(name, 0.0) + (1.0 - t) * w
    for name, w in b.items():
        out[name] = out.get(name, 0.0) + t * w
    return {k: v for k, v in out.items() if abs(v) > 1e-9}


def _mp_palm(side: str) -> dict[str, float]:
    return _mean(f"{side}_wrist", f"{side}_index", f"{side}_pinky")


_MP_HIP_C = _mean("left_hip", "right_hip")
_MP_SHOULDER_C = _mean("left_shoulder", "right_shoulder")
_MP_HEAD = _mean("left_ear", "right_ear")


def _mp_to_ntu25() -> dict[str, Recipe]:
    r: dict[str, Recipe] = {
        "spine_base": _MP_HIP_C,
        "spine_mid": _lerp(_MP_HIP_C, _MP_SHOULDER_C, SPINE_MID_RATIO),
        "neck": _lerp(_MP_SHOULDER_C, _MP_HEAD, NECK_RATIO),
        "head": _MP_HEAD,
        "spine_shoulder": _MP_SHOULDER_C,
    }
    for side in ("left", "right"):
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "thumb"):
            r[f"{joint}_{side}"] = {f"{side}_{joint}": 1.0}
        r[f"hand_{side}"] = _mp_palm(side)
        r[f"foot_{side}"] = {f"{side}_foot_index": 1.0}
        r[f"hand_tip_{side}"] = _lerp({f"{side}_wrist": 1.0}, _mp_palm(side), 1.0 + HAND_TIP_RATIO)
    return r


def _mp_to_kinect20() -> dict[str, Recipe]:
    r: dict[str, Recipe] = {
        "neck": _MP_SHOULDER_C, "hip_center": _MP_HIP_C, "head": _MP_HEAD,
        "spine": _lerp(_MP_HIP_C, _MP_SHOULDER_C, SPINE_MID_RATIO),
    }
    for side in ("left", "right"):
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            r[f"{side}_{joint}"] = {f"{side}_{joint}": 1.0}
        r[f"{side}_hand"] = _mp_palm(side)
        r[f"{side}_foot"] = {f"{side}_foot_index": 1.0}
    return r


def _mp_to_openpose18() -> dict[str, Recipe]:
    r: dict[str, Recipe] = {"nose": {"nose": 1.0}, "neck": _MP_SHOULDER_C}
    for side in ("left", "right"):
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
            r[f"{side}_{joint}"] = {f"{side}_{joint}": 1.0}
    return r


def _by_name(target: str) -> dict[str, Recipe]:
    """Every target joint taken from the source joint of the same name."""
    return {j: {j: 1.0} for j in get_layout(target).joints}


_BODY25_TO_OP18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def _body25_to_openpose18() -> dict[str, Recipe]:
    src, dst = get_layout("body25"), get_layout("openpose18")
    return {dst.joints[t]: {src.joints[s]: 1.0} for t, s in enumerate(_BODY25_TO_OP18)}


# (source, target) -> (recipe builder, source coordinates)
_RECIPES = {
    ("mediapipe33", "ntu25"): (_mp_to_ntu25, "world"),
    ("mediapipe33", "kinect20"): (_mp_to_kinect20, "world"),
    ("mediapipe33", "openpose18"): (_mp_to_openpose18, "image"),
    ("mediapipe33", "coco17"): (lambda: _by_name("coco17"), "image"),
    ("body25", "openpose18"): (_body25_to_openpose18, "image"),
    ("openpose18", "openpose18"): (lambda: _by_name("openpose18"), "image"),
    ("coco17", "coco17"): (lambda: _by_name("coco17"), "image"),
}
_IDENTITY_3D = ("ntu25", "kinect20", "mediapipe33", "florence15", "natops8")


class UnsupportedAdapterError(ValueError):
    """No adapter exists for the requested (source layout, target layout) pair."""


def supported_pairs() -> list[tuple[str, str]]:
    """Every (source, target) layout pair `adapter_for` accepts."""
    return sorted(set(_RECIPES) | {(n, n) for n in _IDENTITY_3D})


def coordinates_for(source: str, target: str) -> Literal["world", "image"]:
    """Which coordinates the source must deliver for this pair: 'world' (3D, metres) or 'image' (2D)."""
    src, dst = _canonical(source), _canonical(target)
    if (src, dst) in _RECIPES:
        return _RECIPES[(src, dst)][1]  # type: ignore[return-value]
    if src == dst and src in _IDENTITY_3D:
        return "world"
    raise _unsupported(source, target)


def kinetics_normalize(joints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Kinetics-skeleton normalisation of [0, 1] image coordinates: (x - 0.5, -(y - 0.5)), 0 where score is 0.

    Args:
        joints: float (..., V, 2) image coordinates divided by width / height (y down).
        scores: float (..., V) joint scores.

    Returns:
        float32 (..., V, 2) in [-0.5, 0.5], y up.
    """
    out = np.empty(joints.shape, dtype=np.float32)
    out[..., 0] = joints[..., 0] - 0.5
    out[..., 1] = 0.5 - joints[..., 1]
    out[scores <= 0] = 0.0
    return out


@dataclass(frozen=True)
class Adapter:
    """A source-layout -> target-layout map for (P, V, D) joints and (P, V) scores.

    Attributes:
        source: Source layout name.
        target: Target layout name.
        weights: float32 (V_target, V_source); target joint = weights @ source joints.
        coordinates: 'world' (3D in, 3D out in Kinect camera axes) or 'image' (2D in, Kinetics-normalised out).
        axes: Per-axis sign applied to 3D output (MediaPipe -> Kinect flips x and y); None keeps the axes.
        image_size: (width, height) in pixels when 2D input is in pixels; None when already in [0, 1].
        min_score: 2D only: joints whose score is below this get score 0 and zero coordinates.
        normalize: 2D only: 'kinetics' (spec §4.6) or 'none' (keep [0, 1] image coordinates).
    """

    source: str
    target: str
    weights: np.ndarray
    coordinates: Literal["world", "image"]
    axes: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    min_score: float = 0.0
    normalize: Literal["kinetics", "none"] = "kinetics"

    @property
    def input_dims(self) -> int:
        return 3 if self.coordinates == "world" else 2

    def __call__(self, joints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map (P, V_source, D) joints and (P, V_source) scores to (P, V_target, D') and (P, V_target)."""
        joints = np.asarray(joints, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        self._check(joints, scores)
        if self.coordinates == "image":
            joints = joints[..., :2]
            if self.image_size is not None:
                joints = joints / np.asarray(self.image_size, dtype=np.float32)
        out = np.einsum("ts,psd->ptd", self.weights, joints).astype(np.float32)  # (P, V_target, D)
        used = self.weights != 0  # (V_target, V_source)
        masked = np.where(used[None], scores[:, None, :], np.inf)  # (P, V_target, V_source)
        out_scores = masked.min(axis=2).astype(np.float32) if len(scores) else np.zeros((0, len(used)), np.float32)
        if self.coordinates == "world":
            if self.axes is not None:
                out *= self.axes
            return out, out_scores
        if self.min_score > 0:
            out_scores[out_scores < self.min_score] = 0.0
        if self.normalize == "kinetics":
            out = kinetics_normalize(out, out_scores)
        return out, out_scores

    def _check(self, joints: np.ndarray, scores: np.ndarray) -> None:
        v_src = self.weights.shape[1]
        if joints.ndim != 3 or joints.shape[1] != v_src:
            raise ValueError(f"adapter {self.source}->{self.target}: expected joints of shape (P, {v_src}, D), "
                             f"got {joints.shape}")
        if joints.shape[2] != self.input_dims:
            kind = "world (3D, metres)" if self.coordinates == "world" else "image (2D)"
            raise ValueError(f"adapter {self.source}->{self.target}: expected {kind} coordinates with "
                             f"D = {self.input_dims}, got D = {joints.shape[2]} (for MediaPipe, open the source "
                             f"with coordinates={self.coordinates!r})")
        if scores.shape != joints.shape[:2]:
            raise ValueError(f"adapter {self.source}->{self.target}: expected scores of shape {joints.shape[:2]}, "
                             f"got {scores.shape}")

    def frame(self, frame: SkeletonFrame) -> SkeletonFrame:
        """The frame with its skeletons in the target layout (image, ids, timings kept)."""
        if _canonical(frame.layout) != _canonical(self.source):
            raise ValueError(f"adapter {self.source}->{self.target} got a frame in layout {frame.layout!r}")
        joints, scores = self(frame.joints, frame.scores)
        return replace(frame, layout=self.target, joints=joints, scores=scores)


def _canonical(name: str) -> str:
    return get_layout(name).name


def _unsupported(source: str, target: str) -> UnsupportedAdapterError:
    pairs = ", ".join(f"{s}->{t}" for s, t in supported_pairs())
    return UnsupportedAdapterError(f"no layout adapter from {source!r} to {target!r}; supported: {pairs}")


def _weights(recipes: Mapping[str, Recipe], source: str, target: str) -> np.ndarray:
    src, dst = get_layout(source), get_layout(target)
    missing = [j for j in dst.joints if j not in recipes]
    assert not missing, f"recipe {source}->{target} lacks {missing}"
    w = np.zeros((dst.num_joints, src.num_joints), dtype=np.float32)
    for t, joint in enumerate(dst.joints):
        for name, weight in recipes[joint].items():
            w[t, src.index(name)] += weight
    return w


def adapter_for(source: str, target: str, *, image_size: Sequence[int] | None = None, min_score: float = 0.0,
                normalize: Literal["kinetics", "none"] = "kinetics") -> Adapter:
    """The adapter from a source layout to a model layout.

    Args:
        source: Layout of the incoming frames (`mediapipe33`, `body25`, `openpose18`/`coco18`, `ntu25`, ...).
        target: Layout the model was trained on.
        image_size: (width, height) when 2D input is in pixels.
        min_score: 2D targets: scores below this count as not detected.
        normalize: 2D targets: 'kinetics' (x - 0.5, -(y - 0.5)) or 'none'.

    Raises:
        UnsupportedAdapterError: The pair is not supported; the message lists the supported pairs.
        KeyError: A layout name is unknown.
    """
    src, dst = _canonical(source), _canonical(target)
    if normalize not in ("kinetics", "none"):
        raise ValueError(f"normalize must be 'kinetics' or 'none', got {normalize!r}")
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    if size is not None and min(size) <= 0:
        raise ValueError(f"image_size must be (width, height) in pixels, got {image_size}")
    if (src, dst) in _RECIPES:
        build, coords = _RECIPES[(src, dst)]
        axes = MP_TO_KINECT_AXES if (coords == "world" and src == "mediapipe33") else None
        return Adapter(src, dst, _weights(build(), src, dst), coords, axes=axes, image_size=size,
                       min_score=float(min_score), normalize=normalize)
    if src == dst and src in _IDENTITY_3D:
        n = get_layout(src).num_joints
        return Adapter(src, dst, np.eye(n, dtype=np.float32), "world")
    raise _unsupported(source, target)
