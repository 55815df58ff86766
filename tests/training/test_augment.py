"""Augmentation invariants: mirroring swaps left/right, bones stay bones, zero joints stay zero, seeded draws."""
import numpy as np
import pytest

from sttr.model.skeleton import get_layout
from sttr.training.augment import (Augmenter, channel_groups, check_mirror_consistent, crop_resize, mirror,
                                   random_window, resize_valid, rotate_scale, rotation_matrix, shift, valid_range)
from sttr.training.config import AugmentConfig

NTU = get_layout("ntu25")
XYZ = channel_groups(["x", "y", "z"])
FULL = AugmentConfig(rotate=30, scale=0.2, shift=0.3, mirror=1.0)


def _sample(seed=0, C=3, T=12, V=25, M=2):
    return np.random.default_rng(seed).normal(size=(C, T, V, M)).astype(np.float32)


def _bones(joints, layout):
    return joints - joints[:, :, list(layout.bone_parents)]


def test_channel_groups_from_names():
    g = channel_groups(["x", "y", "z", "bx", "by", "bz"])
    assert g.positions == (0, 1, 2) and g.vectors == ((3, 4, 5),)
    g2 = channel_groups(["x", "y", "score"])
    assert g2.positions == (0, 1) and g2.vectors == ()
    with pytest.raises(ValueError, match="axes"):
        channel_groups(["x", "y", "z", "bx", "by"])


def test_rotation_matrix_turns_x_into_y_about_z():
    r = rotation_matrix([0, 0, 90])
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_mirror_swaps_left_and_right_and_negates_x():
    data = _sample()
    out = mirror(data, XYZ, NTU)
    left, right = NTU.mirror[0]
    np.testing.assert_array_equal(out[0, :, left], -data[0, :, right])
    np.testing.assert_array_equal(out[1:, :, left], data[1:, :, right])
    np.testing.assert_array_equal(out[1:, :, right], data[1:, :, left])
    spine = 1  # unpaired joint keeps its place
    np.testing.assert_array_equal(out[1:, :, spine], data[1:, :, spine])
    np.testing.assert_array_equal(mirror(out, XYZ, NTU), data)


@pytest.mark.parametrize("name", ["ntu25", "kinect20", "florence15", "natops8", "openpose18"])
def test_bone_trees_of_builtin_layouts_are_mirror_symmetric(name):
    check_mirror_consistent(get_layout(name))


def test_bones_stay_the_bones_of_the_augmented_joints():
    joints = _sample(1)
    data = np.concatenate([joints, _bones(joints, NTU)])
    aug = Augmenter(FULL, NTU, ["x", "y", "z", "bx", "by", "bz"])
    out = aug(data, np.random.default_rng(5))
    assert not np.allclose(out[:3], joints)
    np.testing.assert_allclose(out[3:], _bones(out[:3], NTU), atol=1e-5)


def test_zero_joints_stay_zero():
    data = _sample(2)
    data[:, :, 3, 0] = 0   # one absent joint
    data[:, :, :, 1] = 0   # an absent second person
    data[:, 8:] = 0        # a zero tail
    aug = Augmenter(AugmentConfig(rotate=20, scale=0.1, shift=0.5, mirror=0.0), NTU, ["x", "y", "z"])
    out = aug(data, np.random.default_rng(0))
    assert np.all(out[:, :, 3, 0] == 0) and np.all(out[:, :, :, 1] == 0) and np.all(out[:, 8:] == 0)
    assert np.all(out[:, :8, 4, 0] != 0)
    moved = shift(data, XYZ, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(moved[:, :8, 4, 0] - data[:, :8, 4, 0], np.tile([[1.0], [2.0], [3.0]], (1, 8)),
                               atol=1e-6)


def test_seeded_draws_are_reproducible_and_differ_across_seeds():
    data = _sample(3)
    aug = Augmenter(AugmentConfig(rotate=30, scale=0.2, shift=0.2, mirror=0.5, crop=[0.5, 1.0]), NTU, ["x", "y", "z"],
                    window=10)
    a = aug(data, np.random.default_rng([1, 2, 3]))
    b = aug(data, np.random.default_rng([1, 2, 3]))
    c = aug(data, np.random.default_rng([1, 2, 4]))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 10, 25, 2) and not np.allclose(a, c)


def test_rotation_about_z_keeps_norms_and_2d_rotation():
    data = _sample(4)
    out = rotate_scale(data, XYZ, rotation_matrix([10, 20, 30]), 2.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=0), 2 * np.linalg.norm(data, axis=0), rtol=1e-5)
    g2 = channel_groups(["x", "y", "score"])
    out2 = rotate_scale(data, g2, rotation_matrix([0, 0, 90]))
    np.testing.assert_allclose(out2[0], -data[1], atol=1e-6)
    np.testing.assert_array_equal(out2[2], data[2])  # score untouched


def test_temporal_windows():
    data = _sample(5, T=20)
    data[:, 15:] = 0
    assert valid_range(data) == (0, 15)
    short = random_window(data, 30, np.random.default_rng(0))
    assert short.shape[1] == 30 and valid_range(short)[1] - valid_range(short)[0] == 15
    crop = random_window(data, 10, np.random.default_rng(0))
    assert crop.shape[1] == 10 and np.all(np.any(crop != 0, axis=(0, 2, 3)))
    resized = resize_valid(data, 29, XYZ)  # 15 valid frames -> 29: every other frame is an original one
    np.testing.assert_allclose(resized[:, ::2], data[:, :15], atol=1e-6)
    cr = crop_resize(data, 8, [0.5, 0.5], np.random.default_rng(1), XYZ)
    assert cr.shape == (3, 8, 25, 2)


def test_mirror_requires_pairs():
    from sttr.model.skeleton import Layout
    lay = Layout(name="line", joints=("a", "b"), parents=(-1, 0), center=0)
    with pytest.raises(ValueError, match="left/right"):
        Augmenter(AugmentConfig(mirror=0.5), lay, ["x", "y", "z"])
