"""Spatial-partition adjacency against spec §1.11."""
import numpy as np
import pytest

from sttr.model.graph import adjacency, spatial_adjacency
from sttr.model.skeleton import LAYOUTS, NtuJoint, get_layout


def test_ntu_partition_values_and_semantics():
    a = spatial_adjacency("ntu25")
    assert a.shape == (3, 25, 25) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(25))
    # A1 (inward): binary; column w has a single 1 at its parent; the root's column is zero.
    assert set(np.unique(a[1])) == {0.0, 1.0}
    assert a[1][:, NtuJoint.SPINE_SHOULDER].sum() == 0
    assert a[1][NtuJoint.SPINE_MID, NtuJoint.SPINE_BASE] == 1  # spine base receives spine middle
    assert a[1][NtuJoint.THUMB_LEFT, NtuJoint.HAND_TIP_LEFT] == 1  # the hand tip -> thumb quirk
    # A2 (outward): each joint receives the mean of its children; values {0, .25, .5, 1} for NTU.
    assert set(np.round(np.unique(a[2]), 6)) == {0.0, 0.25, 0.5, 1.0}
    col = a[2][:, NtuJoint.SPINE_SHOULDER]  # children: spine mid, neck, both shoulders
    expected = {NtuJoint.SPINE_MID, NtuJoint.NECK, NtuJoint.SHOULDER_LEFT, NtuJoint.SHOULDER_RIGHT}
    assert {int(i) for i in np.flatnonzero(col)} == {int(j) for j in expected}
    np.testing.assert_allclose(col[list(expected)], 0.25)
    assert a[2][:, NtuJoint.HEAD].sum() == 0  # a leaf receives nothing outward


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_columns_are_normalised(name):
    layout = get_layout(name)
    a = spatial_adjacency(layout)
    for k in (1, 2):
        sums = a[k].sum(axis=0)
        assert np.all((np.abs(sums - 1) < 1e-6) | (sums == 0))
    roots = [v for v, p in enumerate(layout.parents) if p < 0]
    assert np.all(a[1][:, roots].sum(axis=0) == 0)


def test_other_modes_and_bad_mode():
    assert adjacency("openpose18", "uniform").shape == (1, 18, 18)
    assert adjacency("openpose18", "distance").shape == (2, 18, 18)
    with pytest.raises(ValueError, match="unknown graph mode"):
        adjacency("ntu25", "dad")
