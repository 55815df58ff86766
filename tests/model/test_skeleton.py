"""Layouts against the spec's tables (STTR_SPEC §1.11, §4.5) and user-declared layouts."""
import json

import pytest

from sttr.model.skeleton import LAYOUTS, Layout, NtuJoint, OpenPose18Joint, get_layout, load_layout

# Spec §1.11: NTU edges (child, parent), 1-based, in the spec's order.
NTU_EDGES_1B = {(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                (23, 8), (24, 25), (25, 12)}
# Spec §4.5: NTU bone pairs (v1, v2), 1-based: bone[v1] = joint[v1] - joint[v2].
NTU_BONES_1B = {(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                (21, 21), (23, 8), (24, 25), (25, 12)}
KINETICS_EDGES = {(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1),
                  (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)}
KINETICS_BONES = {(0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 5),
                  (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15)}


def test_ntu25_edges_and_bones_match_the_spec():
    ntu = get_layout("ntu25")
    assert ntu.num_joints == 25
    assert {(c + 1, p + 1) for c, p in ntu.edges()} == NTU_EDGES_1B
    assert {(v + 1, p + 1) for v, p in enumerate(ntu.bone_parents)} == NTU_BONES_1B
    assert ntu.parents[NtuJoint.SPINE_SHOULDER] == -1
    assert ntu.center == NtuJoint.SPINE_MID == 1


def test_openpose18_edges_and_bones_match_the_spec():
    op = get_layout("kinetics18")
    assert op is get_layout("openpose18")
    assert set(op.edges()) == KINETICS_EDGES
    assert set(enumerate(op.bone_parents)) == KINETICS_BONES
    assert op.center == OpenPose18Joint.NECK
    assert op.channels == ("x", "y", "score") and not op.is_3d


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_builtin_layout_is_a_forest_with_consistent_mirror(name):
    layout = LAYOUTS[name]
    assert len(layout.parents) == layout.num_joints
    perm = layout.mirror_permutation()
    assert sorted(perm) == list(range(layout.num_joints))
    assert [perm[p] for p in perm] == list(range(layout.num_joints))  # an involution
    for a, b in layout.mirror:  # names of a mirror pair differ only by left/right
        na, nb = layout.joints[a], layout.joints[b]
        assert na.replace("left", "X").replace("right", "X") == nb.replace("left", "X").replace("right", "X"), (na, nb)
    assert Layout.from_dict(layout.to_dict()) == layout


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(KeyError, match="ntu25"):
        get_layout("ntu26")


def test_user_layout_from_yaml_with_edges_by_name(tmp_path):
    path = tmp_path / "arm.yaml"
    path.write_text("name: arm\njoints: [shoulder, elbow, wrist]\nedges: [[elbow, shoulder], [wrist, elbow]]\n"
                    "center: shoulder\nchannels: [x, y, z]\n")
    layout = load_layout(path)
    assert layout.parents == (-1, 0, 1)
    assert layout.bone_parents == (0, 0, 1)
    assert get_layout(str(path)) == layout


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "joints": ["a", "b"], "parents": [-1, 0], "center": 0, "colour": 1}, "unknown layout key"),
    ({"name": "x", "joints": ["a", "b"], "parents": [1, 0], "center": 0}, "root"),
    ({"name": "x", "joints": ["a", "b"], "parents": [-1, 5], "center": 0}, "parents must be joint indices"),
    ({"name": "x", "joints": ["a", "b"], "parents": [-1, 0], "center": 3}, "center"),
    ({"name": "x", "joints": ["a", "a"], "parents": [-1, 0], "center": 0}, "unique"),
    ({"name": "x", "joints": ["a", "b"], "center": 0}, "expected 'parents' or 'edges'"),
])
def test_bad_user_layouts_are_named(tmp_path, bad, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=message):
        load_layout(path)


@pytest.mark.parametrize("name, text, message", [
    ("bad.yaml", "name: x\njoints: [a, b\n", r"bad\.yaml: not valid YAML \(while parsing a flow sequence.*line 2"),
    ("bad.json", '{"name": "x",', r"bad\.json: not valid JSON \(Expecting property name.*char 13\)"),
])
def test_unreadable_layout_files_are_one_line_errors(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        get_layout(str(tmp_path / name))
    assert "\n" not in str(err.value)


def test_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        Layout(name="c", joints=("a", "b", "c"), parents=(-1, 2, 1), center=0)
