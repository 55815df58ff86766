"""Layout adapters, joint by joint, against hand-written expectations."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.model.skeleton import get_layout
from sttr.realtime.adapters import UnsupportedAdapterError, adapter_for, coordinates_for, supported_pairs
from sttr.realtime.frame import SkeletonFrame

MP = get_layout("mediapipe33")
NTU = get_layout("ntu25")
OP18 = get_layout("openpose18")


def _mp_world(seed: int = 0, persons: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    joints = rng.normal(0, 0.3, size=(persons, 33, 3)).astype(np.float32)
    scores = rng.uniform(0.2, 1.0, size=(persons, 33)).astype(np.float32)
    return joints, scores


def _mp(joints: np.ndarray, name: str) -> np.ndarray:
    return joints[:, MP.index(name)]


def _to_kinect(v: np.ndarray) -> np.ndarray:
    return v * np.array([-1, -1, 1], np.float32)  # the documented axis change


def test_mp_to_ntu_direct_joints_and_axes():
    joints, scores = _mp_world()
    out, out_scores = adapter_for("mediapipe33", "ntu25")(joints, scores)
    assert out.shape == (2, 25, 3) and out_scores.shape == (2, 25) and out.dtype == np.float32
    for ntu_name, mp_name in [("shoulder_left", "left_shoulder"), ("elbow_right", "right_elbow"),
                              ("wrist_left", "left_wrist"), ("hip_right", "right_hip"), ("knee_left", "left_knee"),
                              ("ankle_right", "right_ankle"), ("thumb_left", "left_thumb"),
                              ("foot_right", "right_foot_index")]:
        v = NTU.index(ntu_name)
        np.testing.assert_allclose(out[:, v], _to_kinect(_mp(joints, mp_name)), atol=1e-6, err_msg=ntu_name)
        np.testing.assert_allclose(out_scores[:, v], scores[:, MP.index(mp_name)], err_msg=ntu_name)


def test_mp_to_ntu_derived_joints():
    joints, scores = _mp_world(1)
    out, out_scores = adapter_for("mediapipe33", "ntu25")(joints, scores)
    shoulders = (_mp(joints, "left_shoulder") + _mp(joints, "right_shoulder")) / 2
    hips = (_mp(joints, "left_hip") + _mp(joints, "right_hip")) / 2
    head = (_mp(joints, "left_ear") + _mp(joints, "right_ear")) / 2
    np.testing.assert_allclose(out[:, NTU.index("spine_shoulder")], _to_kinect(shoulders), atol=1e-6)
    np.testing.assert_allclose(out[:, NTU.index("spine_base")], _to_kinect(hips), atol=1e-6)
    np.testing.assert_allclose(out[:, NTU.index("head")], _to_kinect(head), atol=1e-6)
    np.testing.assert_allclose(out[:, NTU.index("spine_mid")], _to_kinect(hips + 0.57 * (shoulders - hips)), atol=1e-6)
    np.testing.assert_allclose(out[:, NTU.index("neck")], _to_kinect(shoulders + 0.35 * (head - shoulders)), atol=1e-6)
    palm = (_mp(joints, "right_wrist") + _mp(joints, "right_index") + _mp(joints, "right_pinky")) / 3
    np.testing.assert_allclose(out[:, NTU.index("hand_right")], _to_kinect(palm), atol=1e-6)
    tip = palm + 0.85 * (palm - _mp(joints, "right_wrist"))
    np.testing.assert_allclose(out[:, NTU.index("hand_tip_right")], _to_kinect(tip), atol=1e-5)
    # a derived joint is only as sure as its least sure part
    expect = np.minimum(scores[:, MP.index("left_shoulder")], scores[:, MP.index("right_shoulder")])
    np.testing.assert_allclose(out_scores[:, NTU.index("spine_shoulder")], expect)


def test_mp_to_ntu_upright_person_faces_the_camera_like_ntu():
    # A person facing the camera in MediaPipe world axes (x image-right, y down, z away): their right shoulder
    # is on the image left, the head above (negative y) the hips.
    joints = np.zeros((1, 33, 3), np.float32)
    joints[0, MP.index("right_shoulder")] = (-0.2, -0.5, 0.0)
    joints[0, MP.index("left_shoulder")] = (0.2, -0.5, 0.0)
    joints[0, MP.index("left_ear")] = (0.07, -0.7, 0.0)
    joints[0, MP.index("right_ear")] = (-0.07, -0.7, 0.0)
    joints[0, MP.index("nose")] = (0.0, -0.68, -0.1)
    out, _ = adapter_for("mediapipe33", "ntu25")(joints, np.ones((1, 33), np.float32))
    ntu = out[0]
    # As in NTU data (S001C001P001R001A001): right shoulder has the larger x, head above spine base (y up).
    assert ntu[NTU.index("shoulder_right"), 0] > ntu[NTU.index("shoulder_left"), 0]
    assert ntu[NTU.index("head"), 1] > ntu[NTU.index("spine_shoulder"), 1] > ntu[NTU.index("spine_base"), 1]
    # the axis change is a rotation (det +1), not a mirror: z keeps its sign
    np.testing.assert_allclose(ntu[NTU.index("spine_base"), 2], 0.0)


def test_ntu_sample_agrees_with_documented_axes(shared_data):
    # The NTU file itself: left shoulder has smaller x than right shoulder, head has larger y than spine base.
    lines = (shared_data / "ntu60" / "S001C001P001R001A001.skeleton").read_text().split("\n")
    xyz = np.array([[float(v) for v in lines[4 + j].split()[:3]] for j in range(25)])
    assert xyz[NTU.index("shoulder_right"), 0] > xyz[NTU.index("shoulder_left"), 0]
    assert xyz[NTU.index("head"), 1] > xyz[NTU.index("spine_base"), 1]
    assert xyz[:, 2].min() > 1.0  # z is depth away from the sensor


def test_mp_to_openpose18_kinetics_normalisation():
    rng = np.random.default_rng(2)
    joints = rng.uniform(0, 1, size=(1, 33, 2)).astype(np.float32)
    scores = rng.uniform(0.1, 1, size=(1, 33)).astype(np.float32)
    scores[0, MP.index("left_knee")] = 0.0
    out, out_scores = adapter_for("mediapipe33", "openpose18")(joints, scores)
    assert out.shape == (1, 18, 2)
    nose = joints[0, MP.index("nose")]
    np.testing.assert_allclose(out[0, OP18.index("nose")], (nose[0] - 0.5, -(nose[1] - 0.5)), atol=1e-6)
    neck = (joints[0, MP.index("left_shoulder")] + joints[0, MP.index("right_shoulder")]) / 2
    np.testing.assert_allclose(out[0, OP18.index("neck")], (neck[0] - 0.5, 0.5 - neck[1]), atol=1e-6)
    for name in ("right_wrist", "left_hip", "right_eye", "left_ear"):
        src = joints[0, MP.index(name)]
        np.testing.assert_allclose(out[0, OP18.index(name)], (src[0] - 0.5, 0.5 - src[1]), atol=1e-6, err_msg=name)
        assert out_scores[0, OP18.index(name)] == scores[0, MP.index(name)]
    assert out_scores[0, OP18.index("left_knee")] == 0
    np.testing.assert_array_equal(out[0, OP18.index("left_knee")], (0.0, 0.0))


def test_pixels_with_image_size_and_min_score():
    joints = np.zeros((1, 18, 2), np.float32)
    joints[0, 0] = (170.0, 64.0)
    joints[0, 1] = (10.0, 10.0)
    scores = np.zeros((1, 18), np.float32)
    scores[0, 0], scores[0, 1] = 0.9, 0.05
    out, out_scores = adapter_for("coco18", "openpose18", image_size=(340, 256), min_score=0.1)(joints, scores)
    np.testing.assert_allclose(out[0, 0], (0.0, 0.25), atol=1e-6)
    assert out_scores[0, 1] == 0 and np.all(out[0, 1] == 0)


def test_body25_to_openpose18_joint_by_joint():
    b25 = get_layout("body25")
    joints = np.random.default_rng(3).uniform(0, 1, size=(2, 25, 2)).astype(np.float32)
    scores = np.full((2, 25), 0.8, np.float32)
    out, _ = adapter_for("body25", "openpose18", normalize="none")(joints, scores)
    for name in OP18.joints:
        np.testing.assert_array_equal(out[:, OP18.index(name)], joints[:, b25.index(name)], err_msg=name)
    assert b25.index("right_hip") == 9 and OP18.index("right_hip") == 8


def test_mp_to_kinect20_and_coco17():
    k20 = get_layout("kinect20")
    joints, scores = _mp_world(4)
    out, _ = adapter_for("mediapipe33", "kinect20")(joints, scores)
    assert out.shape == (2, 20, 3)
    np.testing.assert_allclose(out[:, k20.index("left_elbow")], _to_kinect(_mp(joints, "left_elbow")), atol=1e-6)
    hips = (_mp(joints, "left_hip") + _mp(joints, "right_hip")) / 2
    np.testing.assert_allclose(out[:, k20.index("hip_center")], _to_kinect(hips), atol=1e-6)
    coco = get_layout("coco17")
    img = joints[..., :2] % 1
    out2, _ = adapter_for("mediapipe33", "coco17", normalize="none")(img, scores)
    for name in coco.joints:
        np.testing.assert_allclose(out2[:, coco.index(name)], img[:, MP.index(name)], err_msg=name)


def test_identity_3d_and_frame_adaptation():
    joints = np.random.default_rng(5).normal(size=(1, 25, 3)).astype(np.float32)
    frame = SkeletonFrame("ntu25", 12.0, 3, joints, np.ones((1, 25)), track_ids=[7])
    out = adapter_for("ntu25", "ntu25").frame(frame)
    np.testing.assert_array_equal(out.joints, joints)
    assert out.track_ids == [7] and out.index == 3 and out.layout == "ntu25"
    mp_frame = SkeletonFrame("mediapipe33", 0.0, 0, *_mp_world(6, persons=1))
    assert adapter_for("mediapipe33", "ntu25").frame(mp_frame).layout == "ntu25"
    with pytest.raises(ValueError, match="layout 'ntu25'"):
        adapter_for("mediapipe33", "ntu25").frame(frame)


def test_empty_frame():
    out, scores = adapter_for("mediapipe33", "ntu25")(np.zeros((0, 33, 3)), np.zeros((0, 33)))
    assert out.shape == (0, 25, 3) and scores.shape == (0, 25)


def test_errors_name_what_is_wrong():
    with pytest.raises(UnsupportedAdapterError, match="mediapipe33->ntu25"):
        adapter_for("ntu25", "openpose18")
    with pytest.raises(ValueError, match="coordinates='image'"):
        adapter_for("mediapipe33", "openpose18")(np.zeros((1, 33, 3)), np.ones((1, 33)))
    with pytest.raises(ValueError, match=r"\(P, 33, D\)"):
        adapter_for("mediapipe33", "ntu25")(np.zeros((1, 25, 3)), np.ones((1, 25)))
    with pytest.raises(KeyError, match="unknown skeleton layout"):
        adapter_for("nope", "ntu25")
    assert coordinates_for("mediapipe33", "ntu25") == "world"
    assert coordinates_for("mediapipe33", "openpose18") == "image"
    assert ("body25", "openpose18") in supported_pairs()


def test_msr_action3d_sample_agrees_with_the_kinect_axes(shared_data):
    # MSR Action3D real-world files use the same camera axes the kinect20 adapter produces.
    path = shared_data / "small" / "MSRAction3D" / "real_world_coordinates" / "a01_s01_e01_skeleton3D.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    k20 = get_layout("kinect20")
    xyz = np.loadtxt(path)[:20, :3]  # the first frame
    assert xyz[k20.index("right_shoulder"), 0] > xyz[k20.index("left_shoulder"), 0]
    assert xyz[k20.index("head"), 1] > xyz[k20.index("hip_center"), 1] > xyz[k20.index("left_foot"), 1]
    assert xyz[:, 2].min() > 1.0
