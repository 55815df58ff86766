"""Bit-exactness of the reproduce-quirks data path (spec §4.2-4.6) on hand-built inputs where float rounding shows.

The reference computes in float64 from the text/JSON numbers and rounds to float32 once when it stores a sample; it
rotates joint by joint. These fixtures sit where another rounding order changes the stored float32 values or the
choice of persons. The expectations are computed here with plain numpy, the way the spec describes each step.
"""
import json

import numpy as np

from sttr.model.preprocess import PreprocessSpec, _legacy_rotation_matrix, pre_normalize
from sttr.training.gendata.bodies import select_bodies
from sttr.training.gendata.kinetics import load_kinetics_sample
from sttr.training.gendata.ntu import generate_ntu, load_ntu_sample
from sttr.training.gendata.runner import SampleTask


def _write_skeleton(path, joints):
    """An NTU .skeleton file holding joints (F, B, 25, 3); the other fields are dummies."""
    lines = [str(len(joints))]
    for bodies in joints:
        lines.append(str(len(bodies)))
        for b, body in enumerate(bodies):
            lines += [f"{72057594037927936 + b} 0 1 1 1 1 0 0.1 0.1 2", "25"]
            lines += [" ".join(repr(float(v)) for v in xyz) + " 0 0 0 0 0 0 0 0 2" for xyz in body]
    path.write_text("\r\n".join(lines) + "\r\n")


def _energy(body, zero_sum_empty=False):
    """Spec §4.2 energy of (F, V, 3) float64: sum of the per-channel std over the frames where the body is."""
    present = body.sum(axis=(1, 2)) != 0 if zero_sum_empty else np.any(body != 0, axis=(1, 2))
    valid = body[present]
    return sum(valid[..., c].std() for c in range(3))


def _rotate_joint_by_joint(s, pair, target):
    """Spec §4.4 step 3/4 on (M, T, V, 3) float32: rotate every joint of the non-empty frames, one at a time."""
    vec = s[0, 0, pair[1]] - s[0, 0, pair[0]]
    unit = vec / np.linalg.norm(vec)
    angle = np.arccos(np.clip(np.dot(unit, np.asarray(target) / np.linalg.norm(target)), -1, 1))
    rot = _legacy_rotation_matrix(np.cross(vec, target), angle)
    for person in s:
        for frame in person:
            if frame.sum() != 0:
                for j in range(len(frame)):
                    frame[j] = np.dot(rot, frame[j])


def test_legacy_rotation_rounds_like_joint_by_joint_products():
    # Person 0's shoulders lie along x once the spine is on z, so the second rotation is the identity and the
    # first one's nearly cancelling coordinates (the spine base's x, y) reach the output; there the last bits of
    # the float64 sums survive the float32 cast. A matrix product (`xyz @ rot.T`) rounded them otherwise.
    rng = np.random.default_rng(0)
    for trial in range(60):
        x = (rng.normal(size=(3, 4, 25, 2)) * 0.3).astype(np.float32)
        x[:, :, :, 0] += np.array([0, 0, 3.0], np.float32)[:, None, None]
        x[..., 1] = 0
        x[:, 0, 0, 0] = x[:, 0, 1, 0] - (rng.normal(size=3) * 0.3).astype(np.float32)
        v = x[:, 0, 1, 0] - x[:, 0, 0, 0]
        rot = _legacy_rotation_matrix(np.cross(v, [0, 0, 1]), np.arccos(v[2] / np.linalg.norm(v)))
        x[:, 0, 4, 0] = x[:, 0, 8, 0] - (rot.T @ np.array([0.4, 0, 0])).astype(np.float32)
        s = np.ascontiguousarray(x.transpose(3, 1, 2, 0))  # (M, T, V, C); every frame present: no padding
        centre = s[0, :, 1:2].copy()
        s[0] = (s[0] - centre) * (s[0].sum(-1) != 0)[..., None]
        _rotate_joint_by_joint(s, (0, 1), [0, 0, 1])
        _rotate_joint_by_joint(s, (4, 8), [1, 0, 0])
        out = pre_normalize(x, "ntu25", legacy=True)
        np.testing.assert_array_equal(out, s.transpose(3, 1, 2, 0), err_msg=f"trial {trial}")


def test_body_ranking_uses_the_files_float64_values(tmp_path):
    # Two bodies whose energies differ beyond float32 precision: the reference ranks them on the text's values.
    rng = np.random.default_rng(6)
    b0 = np.round(rng.normal(size=(3, 25, 3)), 7)
    b1 = b0 + 0.5  # the same spread ...
    b1[1, 3, 0] += 1e-7  # ... but for one coordinate
    b1 = np.round(b1, 7)
    e64 = [_energy(b) for b in (b0, b1)]
    e32 = [_energy(b.astype(np.float32).astype(np.float64)) for b in (b0, b1)]
    assert (e64[0] > e64[1]) != (e32[0] > e32[1])  # the fixture sits where float32 ranks them the other way
    path = tmp_path / "S001C001P001R001A050.skeleton"
    _write_skeleton(path, np.stack([b0, b1], axis=1))
    first = 0 if e64[0] > e64[1] else 1
    for legacy in (False, True):
        got = load_ntu_sample(SampleTask(path.name, str(path), 49), legacy=legacy)  # (3, F, 25, 2)
        np.testing.assert_array_equal(got[..., 0], np.stack([b0, b1])[first].transpose(2, 0, 1).astype(np.float32))


def _zero_sum_bodies():
    """Body 0 has less energy than body 1 unless its frame 2, whose values sum to zero, counts as present."""
    rng = np.random.default_rng(0)
    z = np.round(rng.normal(size=(6, 25, 3)) * 0.1, 6)
    z1 = np.round(z * 1.2 + 0.3, 6)
    z[2] = 0.0
    z[2, 0] = [2.0, -1.0, -1.0]
    z1[2] = z1[1]
    assert _energy(z, True) < _energy(z1, True) and _energy(z) > _energy(z1)
    return np.stack([z, z1], axis=1)


def test_legacy_body_selection_takes_zero_sum_frames_as_empty(tmp_path):
    joints = _zero_sum_bodies()
    fixed = select_bodies(joints, 2, 4)
    legacy = select_bodies(joints, 2, 4, legacy=True)
    np.testing.assert_array_equal(fixed[:, 0], joints[:, 0].astype(np.float32))
    np.testing.assert_array_equal(legacy[:, 0], joints[:, 1].astype(np.float32))
    # gendata passes the mode on: --pre-normalization legacy selects as the reference
    raw = tmp_path / "raw"
    raw.mkdir()
    _write_skeleton(raw / "S001C001P001R001A050.skeleton", joints)
    for mode, first in (("legacy", 1), ("fixed", 0)):
        spec = PreprocessSpec(pre_normalization="none", padding="zero", window=8)
        if mode == "legacy":
            spec = PreprocessSpec(pre_normalization="legacy", padding="zero", rotate=False, window=8)
        generate_ntu([raw], tmp_path / mode, "ntu60", "xsub", spec, missing_list=None, progress=False)
        data = np.load(tmp_path / mode / "xsub/train_data.npy")
        body = joints[:, first].astype(np.float32)
        if mode == "legacy":  # centred on its joint 1 (pre-normalisation without the rotations)
            body = (body - body[:, 1:2]) * (body.sum(-1) != 0)[..., None]
        np.testing.assert_array_equal(data[0, :, :6, :, 0], body.transpose(2, 0, 1))


def test_kinetics_rounds_to_float32_once(tmp_path):
    # x - 0.5 and -(y - 0.5) in float64 from the JSON numbers, then float32 (as the reference); rounding the JSON
    # numbers to float32 first can move the result by one ulp. Persons are ranked on float64 score sums: person 1's
    # sum is larger by 1e-9, which float32 scores cannot tell.
    rng = np.random.default_rng(0)
    frames, expected = [], []
    for t in range(4):
        pose = [float(v) for v in np.round(rng.uniform(0.01, 0.99, 36), 9)]
        low, high = [0.3] * 18, [0.3] * 17 + [0.3 + 1e-9]
        frames.append({"frame_index": t, "skeleton": [{"pose": pose, "score": low}, {"pose": pose, "score": high}]})
        xy = np.array(pose, np.float64).reshape(18, 2)
        expected.append(np.stack([xy[:, 0] - 0.5, -(xy[:, 1] - 0.5), np.array(high)]).astype(np.float32))
    path = tmp_path / "video.json"
    path.write_text(json.dumps({"data": frames, "label": "x", "label_index": 0}))
    out = load_kinetics_sample(SampleTask(path.name, str(path), 0))  # (3, T, 18, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], np.stack(expected, axis=1))
    np.testing.assert_array_equal(out[2, :, :, 1], np.full((4, 18), 0.3, np.float32))


def test_kinetics_repeated_frame_index_replaces_persons_slot_by_slot(tmp_path):
    # The reference writes each entry's persons into rows frame_index, slots 0, 1, ...: a later entry with the
    # same frame_index overwrites the slots it fills and leaves the others (pooling both entries' persons and
    # ranking them would keep a person the reference dropped).
    def person(value, score):
        return {"pose": [value] * 36, "score": [score] * 18}

    data = [{"frame_index": 0, "skeleton": [person(0.1, 0.9), person(0.2, 0.8), person(0.3, 0.7)]},
            {"frame_index": 0, "skeleton": [person(0.6, 0.2)]}]
    path = tmp_path / "video.json"
    path.write_text(json.dumps({"data": data, "label": "x", "label_index": 0}))
    out = load_kinetics_sample(SampleTask(path.name, str(path), 0))  # (3, 1, 18, 2): slots 0.6/0.2, 0.2/0.8, 0.3/0.7
    np.testing.assert_array_equal(out[:, 0, 0, 0], np.float32([-0.3, 0.3, 0.8]))  # 0.2 (score 0.8) first
    np.testing.assert_array_equal(out[:, 0, 0, 1], np.float32([-0.2, 0.2, 0.7]))  # then 0.3; 0.1/0.9 was replaced
