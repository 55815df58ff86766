"""Pre-normalisation, loop padding, bones and PreprocessSpec, on real NTU skeletons and small synthetic windows."""
import math

import numpy as np
import pytest

from sttr.model.preprocess import (PreprocessSpec, bones, loop_pad, merge_joints_bones, pad_frames, pre_normalize,
                                   rotation_joints)
from sttr.model.skeleton import LAYOUTS, NtuJoint, OpenPose18Joint

T = 300


def _ntu_window(shared_data, name, frames=T):
    from sttr.training.readers.ntu import read_skeleton

    joints = read_skeleton(shared_data / "ntu60" / f"{name}.skeleton").joints  # (F, B, 25, 3)
    window = np.zeros((3, frames, 25, 2), np.float32)
    f, b = min(len(joints), frames), joints.shape[1]
    window[:, :f, :, :b] = joints[:f].transpose(3, 0, 2, 1)
    return window, len(joints)


# --- an independent transcription of the reference prenormalization.py loops (spec §4.4), the oracle ---------------

def _ref_rotation_matrix(axis, theta):
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis)
    axis = axis / math.sqrt(np.dot(axis, axis))
    a = math.cos(theta / 2.0)
    b, c, d = -axis * math.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def _ref_angle(v1, v2):
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0
    v1_u, v2_u = v1 / np.linalg.norm(v1), np.asarray(v2) / np.linalg.norm(v2)
    return np.arccos(np.clip(np.dot(v1_u, v2_u), -1.0, 1.0))


def _reference_pre_normalization(data, zaxis=(0, 1), xaxis=(8, 4)):
    data = data.copy()
    n_, c_, t_, v_, m_ = data.shape
    s = np.transpose(data, [0, 4, 2, 3, 1])
    for i_s, skeleton in enumerate(s):
        for i_p, person in enumerate(skeleton):
            if person.sum() == 0:
                continue
            if person[0].sum() == 0:
                index = (person.sum(-1).sum(-1) != 0)
                tmp = person[index].copy()
                person *= 0
                person[:len(tmp)] = tmp
            for i_f, frame in enumerate(person):
                if frame.sum() == 0:
                    if person[i_f:].sum() == 0:
                        rest = len(person) - i_f
                        num = int(np.ceil(rest / i_f))
                        pad = np.concatenate([person[0:i_f] for _ in range(num)], 0)[:rest]
                        s[i_s, i_p, i_f:] = pad
                        break
    for i_s, skeleton in enumerate(s):
        if skeleton.sum() == 0:
            continue
        main_body_center = skeleton[0][:, 1:2, :].copy()
        for i_p, person in enumerate(skeleton):
            if person.sum() == 0:
                continue
            mask = (person.sum(-1) != 0).reshape(t_, v_, 1)
            s[i_s, i_p] = (s[i_s, i_p] - main_body_center) * mask
    for pair, target in ((zaxis, [0, 0, 1]), ((xaxis[1], xaxis[0]), [1, 0, 0])):
        for i_s, skeleton in enumerate(s):
            if skeleton.sum() == 0:
                continue
            vec = skeleton[0, 0, pair[1]] - skeleton[0, 0, pair[0]]
            matrix = _ref_rotation_matrix(np.cross(vec, target), _ref_angle(vec, target))
            for i_p, person in enumerate(skeleton):
                if person.sum() == 0:
                    continue
                for i_f, frame in enumerate(person):
                    if frame.sum() == 0:
                        continue
                    for i_j, joint in enumerate(frame):
                        s[i_s, i_p, i_f, i_j] = np.dot(matrix, joint)
    return np.transpose(s, [0, 4, 2, 3, 1])


# --- fixed mode on real data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["S001C001P001R001A050", "S017C003P020R002A054"])
def test_fixed_mode_centres_and_aligns_exactly(shared_data, name):
    window, frames = _ntu_window(shared_data, name)
    out = pre_normalize(window, "ntu25")
    p0 = out[..., 0].astype(np.float64)  # (C, T, V)
    np.testing.assert_allclose(p0[:, :, NtuJoint.SPINE_MID], 0, atol=1e-6)  # centre at the origin, every frame
    spine = p0[:, 0, NtuJoint.SPINE_MID] - p0[:, 0, NtuJoint.SPINE_BASE]
    np.testing.assert_allclose(spine[:2], 0, atol=1e-6)  # spine exactly along +z
    assert spine[2] > 0.1
    shoulders = p0[:, 0, NtuJoint.SHOULDER_RIGHT] - p0[:, 0, NtuJoint.SHOULDER_LEFT]
    assert abs(shoulders[1]) < 1e-6 and shoulders[0] > 0.1  # shoulders in the x-z plane, pointing +x
    assert np.all(out[..., 1] != 0)  # the second person is kept, loop-padded too


def test_fixed_mode_is_rigid(shared_data):
    """Centring and rotation keep every distance between joints of the same frame (metres)."""
    window, frames = _ntu_window(shared_data, "S001C003P008R002A058")
    out = pre_normalize(window, "ntu25")
    for m in range(2):
        a, b = window[:, 5, :, m].T, out[:, 5, :, m].T
        da = np.linalg.norm(a[:, None] - a[None], axis=-1)
        db = np.linalg.norm(b[:, None] - b[None], axis=-1)
        np.testing.assert_allclose(db, da, atol=1e-5)
    # both persons are moved by the same transform: person 1 relative to person 0 keeps its distance
    d_in = np.linalg.norm(window[:, 5, 0, 1] - window[:, 5, 0, 0])
    d_out = np.linalg.norm(out[:, 5, 0, 1] - out[:, 5, 0, 0])
    assert d_out == pytest.approx(d_in, abs=1e-5)


def test_loop_padding_repeats_the_clip(shared_data):
    window, frames = _ntu_window(shared_data, "S001C001P001R001A011")
    out = pre_normalize(window, "ntu25")
    assert frames < T // 2
    np.testing.assert_array_equal(out[:, frames: 2 * frames], out[:, :frames])
    np.testing.assert_array_equal(out[:, T - 1], out[:, (T - 1) % frames])
    assert not np.any(out[..., 1])  # a one-person clip keeps an empty second slot


# --- legacy mode ----------------------------------------------------------------------------------------------------

def test_legacy_reproduces_the_reference(shared_data):
    a, _ = _ntu_window(shared_data, "S001C001P001R001A050")
    b, _ = _ntu_window(shared_data, "S002C001P003R001A003")
    b[:, :10] = 0  # a clip starting with empty frames exercises the move-to-front step
    batch = np.stack([a, b])
    expected = _reference_pre_normalization(batch)
    out = pre_normalize(batch, "ntu25", legacy=True)
    np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)


def test_legacy_second_rotation_disturbs_the_first(shared_data):
    window, _ = _ntu_window(shared_data, "S001C001P001R001A050")
    out = pre_normalize(window, "ntu25", legacy=True)[..., 0].astype(np.float64)
    shoulders = out[:, 0, NtuJoint.SHOULDER_RIGHT] - out[:, 0, NtuJoint.SHOULDER_LEFT]
    np.testing.assert_allclose(shoulders[1:], 0, atol=1e-6)  # exactly along +x
    spine = out[:, 0, NtuJoint.SPINE_MID] - out[:, 0, NtuJoint.SPINE_BASE]
    assert np.hypot(spine[0], spine[1]) > 1e-3  # no longer along +z


def test_zero_sum_frame_is_empty_only_in_legacy_mode():
    rng = np.random.default_rng(0)
    window = np.zeros((3, 8, 25, 2), np.float32)
    window[:, :6, :, 0] = rng.normal(size=(3, 6, 25)).astype(np.float32) + 1
    frame = window[:, 3, :, 0]
    frame[:] = rng.integers(-3, 4, size=frame.shape).astype(np.float32)
    frame[0, 0] -= frame.sum()  # values non-zero, sum exactly zero
    assert frame.sum() == 0 and np.any(frame)
    legacy = loop_pad(window, legacy=True)
    fixed = loop_pad(window)
    np.testing.assert_array_equal(fixed[:, 3], window[:, 3])  # a real frame stays
    np.testing.assert_array_equal(fixed[:, 6], window[:, 0])  # loop padding starts after the last real frame
    np.testing.assert_array_equal(legacy[:, 3], window[:, 3])  # legacy also keeps it (first empty frame not at end)
    np.testing.assert_array_equal(legacy[:, 6], window[:, 0])
    window[:, 4:6] = 0  # now the zero-sum frame starts the empty tail in legacy's eyes
    legacy = loop_pad(window, legacy=True)
    fixed = loop_pad(window)
    np.testing.assert_array_equal(legacy[:, 3], window[:, 0])  # overwritten by the padding
    np.testing.assert_array_equal(fixed[:, 3], window[:, 3])
    np.testing.assert_array_equal(fixed[:, 4], window[:, 0])


# --- live windows, missing data, 2-D layouts ------------------------------------------------------------------------

def test_person_zero_absent_centres_on_the_present_person(shared_data):
    window, frames = _ntu_window(shared_data, "S001C001P001R001A001", frames=64)
    live = np.zeros_like(window)
    live[..., 1] = window[..., 0]  # the tracker put the only person in slot 1
    out = pre_normalize(live, "ntu25")
    assert not np.any(out[..., 0])
    np.testing.assert_allclose(out[:, :, NtuJoint.SPINE_MID, 1], 0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], pre_normalize(window, "ntu25")[..., 0], atol=1e-6)
    legacy = pre_normalize(live, "ntu25", legacy=True)  # the reference centres on the empty slot 0: no centring
    assert np.abs(legacy[:, :, NtuJoint.SPINE_MID, 1]).max() > 0.1


def test_missing_joints_stay_zero_and_centre_is_carried_over(shared_data):
    window, _ = _ntu_window(shared_data, "S001C001P001R001A001", frames=64)
    window[:, 10:20, NtuJoint.HAND_LEFT, 0] = 0  # a lost joint
    window[:, 30, NtuJoint.SPINE_MID, 0] = 0  # the centre joint missing in one frame
    out = pre_normalize(window, "ntu25")
    assert not np.any(out[:, 10:20, NtuJoint.HAND_LEFT, 0])
    assert not np.any(out[:, 30, NtuJoint.SPINE_MID, 0])
    # frame 30 is centred with frame 29's centre: its spine base sits where frame 29's would with that centre
    base_in = window[:, 30, NtuJoint.SPINE_BASE, 0] - window[:, 29, NtuJoint.SPINE_MID, 0]
    assert np.linalg.norm(out[:, 30, NtuJoint.SPINE_BASE, 0]) == pytest.approx(np.linalg.norm(base_in), abs=1e-5)


def test_two_d_layout_centres_xy_and_keeps_scores(shared_data):
    from sttr.training.readers.kinetics import read_kinetics_video

    joints = read_kinetics_video(shared_data / "kinetics/st-gcn-demo-output/clean_and_jerk.json").joints
    window = np.zeros((3, 300, 18, 2), np.float32)
    window[..., :1] = joints[:300].transpose(3, 0, 2, 1)
    out = pre_normalize(window, "openpose18")
    np.testing.assert_array_equal(out[2], window[2])  # scores untouched
    neck = OpenPose18Joint.NECK
    present = window[2, :, neck, 0] > 0
    np.testing.assert_allclose(out[:2, present, neck, 0], 0, atol=1e-6)
    # no rotation: a vector between two present joints keeps its direction and length
    t = int(np.flatnonzero(present & (window[2, :, OpenPose18Joint.NOSE, 0] > 0))[0])
    v_in = window[:2, t, OpenPose18Joint.NOSE, 0] - window[:2, t, neck, 0]
    np.testing.assert_allclose(out[:2, t, OpenPose18Joint.NOSE, 0], v_in, atol=1e-6)
    undetected = window[2, ..., 0] == 0
    assert undetected.any() and not np.any(out[:2, ..., 0][:, undetected])


def test_all_zero_window_stays_zero():
    assert not np.any(pre_normalize(np.zeros((3, 16, 25, 2), np.float32)))
    assert not np.any(pre_normalize(np.zeros((3, 16, 25, 2), np.float32), legacy=True))


def test_loop_pad_moves_late_frames_to_the_front():
    window = np.zeros((2, 10, 3, 1), np.float32)
    window[:, 4:7] = np.arange(1, 4, dtype=np.float32)[None, :, None, None]  # frames 4..6 hold 1, 2, 3
    out = loop_pad(window)
    np.testing.assert_array_equal(out[0, :, 0, 0], [1, 2, 3, 1, 2, 3, 1, 2, 3, 1])


def test_rotation_joints_defaults():
    assert rotation_joints("ntu25") == ((0, 1), (8, 4))  # spec §4.4: joints 0 -> 1 along z, 8 - 4 along x
    assert rotation_joints("openpose18") == (None, None)


# --- bones ----------------------------------------------------------------------------------------------------------

# spec §4.5, 1-based (v1, v2) pairs: bone[v1] = joint[v1] - joint[v2]
_NTU_BONE_PAIRS = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                   (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                   (21, 21), (23, 8), (24, 25), (25, 12))
_KINETICS_BONE_PAIRS = ((0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9),
                        (11, 5), (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15))


def test_ntu_bones_are_joint_minus_parent(shared_data):
    window, _ = _ntu_window(shared_data, "S001C003P008R002A058", frames=32)
    out = bones(window, "ntu25")
    for v1, v2 in _NTU_BONE_PAIRS:
        np.testing.assert_array_equal(out[:, :, v1 - 1], window[:, :, v1 - 1] - window[:, :, v2 - 1])
    assert not np.any(out[:, :, NtuJoint.SPINE_SHOULDER])  # the root's bone is zero
    batch = bones(window[None], "ntu25")
    np.testing.assert_array_equal(batch[0], out)


def test_kinetics_bones_and_the_score_channel():
    rng = np.random.default_rng(1)
    window = rng.random((3, 4, 18, 2)).astype(np.float32)
    legacy = bones(window, "openpose18", legacy=True)
    fixed = bones(window, "openpose18")
    for v1, v2 in _KINETICS_BONE_PAIRS:
        np.testing.assert_allclose(legacy[:, :, v1], window[:, :, v1] - window[:, :, v2], atol=1e-7)
        np.testing.assert_allclose(fixed[:2, :, v1], window[:2, :, v1] - window[:2, :, v2], atol=1e-7)
        np.testing.assert_allclose(fixed[2, :, v1], (window[2, :, v1] + window[2, :, v2]) / 2, atol=1e-7)


def test_bones_for_every_layout():
    for name, layout in LAYOUTS.items():
        window = np.random.default_rng(2).random((layout.num_channels, 5, layout.num_joints, 2)).astype(np.float32)
        out = bones(window, layout)
        coords = [i for i, c in enumerate(layout.channels) if c in "xyz"]
        for v, p in enumerate(layout.bone_parents):
            np.testing.assert_allclose(out[coords, :, v], window[coords, :, v] - window[coords, :, p], atol=1e-7,
                                       err_msg=name)


def test_merge_and_shape_errors():
    j = np.ones((3, 4, 25, 2), np.float32)
    assert merge_joints_bones(j, 2 * j).shape == (6, 4, 25, 2)
    with pytest.raises(ValueError, match="same shape"):
        merge_joints_bones(j, j[:, :2])
    with pytest.raises(ValueError, match="ntu25"):
        pre_normalize(np.zeros((3, 4, 18, 2)), "ntu25")
    with pytest.raises(ValueError, match=r"\(C, T, V, M\)"):
        bones(np.zeros((3, 4, 25)), "ntu25")


# --- PreprocessSpec -------------------------------------------------------------------------------------------------

def test_spec_round_trip_and_unknown_keys():
    spec = PreprocessSpec(layout="ntu25", bones="merge", window=64)
    d = spec.to_dict()
    assert d["channels"] == ["x", "y", "z", "bx", "by", "bz"] and d["center_joint"] == 1
    assert d["zaxis"] == [0, 1] and d["xaxis"] == [8, 4]
    assert PreprocessSpec.from_dict(d) == spec
    with pytest.raises(ValueError, match="unknown PreprocessSpec key.*'windw'"):
        PreprocessSpec.from_dict({**d, "windw": 3})
    with pytest.raises(ValueError, match="pre_normalization"):
        PreprocessSpec(pre_normalization="yes")
    with pytest.raises(ValueError, match="channels"):
        PreprocessSpec.from_dict({**d, "channels": ["x", "y", "z"]})
    assert PreprocessSpec(bones=True).bones == "merge"


def test_spec_apply_pads_normalises_and_merges(shared_data):
    window, frames = _ntu_window(shared_data, "S001C001P001R001A050", frames=40)
    spec = PreprocessSpec(layout="ntu25", bones="merge", window=64)
    out = spec.apply(window)
    assert out.shape == (6, 64, 25, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:3, :, NtuJoint.SPINE_MID, 0], 0, atol=1e-6)
    np.testing.assert_allclose(out[3:], bones(out[:3], "ntu25"), atol=1e-6)
    np.testing.assert_array_equal(out[:, 40:], out[:, :24])  # the 40 real frames loop
    np.testing.assert_array_equal(spec.apply_batch(window[None])[0], out)
    with pytest.raises(ValueError, match="at most T=64"):
        spec.apply(np.zeros((3, 65, 25, 2), np.float32))
    with pytest.raises(ValueError, match="M=2"):
        spec.apply(np.zeros((3, 64, 25, 1), np.float32))
    with pytest.raises(ValueError, match=r"one window \(C, T, V, M\)"):
        spec.apply(np.zeros((1, 3, 64, 25, 2), np.float32))


def test_spec_apply_on_every_layout():
    for name, layout in LAYOUTS.items():
        for mode in ("fixed", "legacy", "none"):
            spec = PreprocessSpec(layout=name, pre_normalization=mode, bones="merge", window=16)
            window = np.random.default_rng(3).normal(size=(layout.num_channels, 12, layout.num_joints, 2))
            window[:, :, :, 1] = 0
            out = spec.apply(window.astype(np.float32))
            assert out.shape == (2 * layout.num_channels, 16, layout.num_joints, 2), (name, mode)
            assert np.isfinite(out).all(), (name, mode)


def test_pad_frames():
    x = np.ones((3, 5, 25, 2), np.float32)
    assert pad_frames(x, 8).shape == (3, 8, 25, 2) and not np.any(pad_frames(x, 8)[:, 5:])
    assert pad_frames(x, 3).shape == (3, 3, 25, 2)


def test_spec_with_a_user_layout_dict():
    layout = {"name": "stick3", "joints": ["hip", "chest", "head"], "parents": [-1, 0, 1], "center": 0,
              "channels": ["x", "y", "score"]}
    spec = PreprocessSpec(layout=layout, bones="only", window=4, persons=1)
    again = PreprocessSpec.from_dict(json_round_trip(spec.to_dict()))
    assert again.to_dict() == spec.to_dict() and again.channels == ("bx", "by", "bscore")
    window = np.zeros((3, 2, 3, 1), np.float32)
    window[:, :, 2, 0] = [[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]]  # head at (1, 2), score 0.5
    window[:, :, 0, 0] = [[1.0, 1.0], [1.0, 1.0], [0.9, 0.9]]  # hip at (1, 1)
    window[:, :, 1, 0] = [[1.0, 1.0], [1.5, 1.5], [0.7, 0.7]]  # chest at (1, 1.5)
    out = again.apply(window)
    np.testing.assert_allclose(out[:2, 0, 2, 0], [0.0, 0.5])  # head - chest, after centring on the hip
    np.testing.assert_allclose(out[2, 0, 2, 0], 0.6)  # mean of the two scores


def json_round_trip(d):
    import json

    return json.loads(json.dumps(d))
