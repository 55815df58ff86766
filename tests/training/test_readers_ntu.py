"""NTU `.skeleton` reader and missing-sample lists: the real samples, and generated noisy files."""
import numpy as np
import pytest

from sttr.training.readers.missing import read_missing_list
from sttr.training.readers.ntu import SkeletonFormatError, parse_sample_name, read_skeleton

# SOURCES.md: name -> (frames, bodies in every frame)
REAL = {
    "S001C001P001R001A001": (103, 1), "S001C001P001R001A011": (82, 1), "S002C001P003R001A003": (100, 1),
    "S004C002P003R001A017": (124, 1), "S001C003P008R002A058": (70, 2), "S001C001P001R001A050": (74, 2),
    "S017C003P020R002A054": (42, 2), "S017C003P020R002A055": (66, 2), "S017C003P020R002A056": (80, 2),
    "S017C003P020R002A058": (65, 2),
}


def test_sample_names():
    sid = parse_sample_name("some/dir/S017C003P020R002A058.skeleton")
    assert (sid.setup, sid.camera, sid.subject, sid.replication, sid.action, sid.label) == (17, 3, 20, 2, 58, 57)
    assert sid.name == "S017C003P020R002A058"
    assert parse_sample_name("S032C001P106R002A120").label == 119
    with pytest.raises(ValueError, match="expected an NTU sample name"):
        parse_sample_name("clip_0001.skeleton")


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_samples(shared_data, name):
    frames, bodies = REAL[name]
    sk = read_skeleton(shared_data / "ntu60" / f"{name}.skeleton")
    assert sk.joints.shape == (frames, bodies, 25, 3) and sk.joints.dtype == np.float32
    assert (sk.bodies_per_frame == bodies).all()
    assert np.all(np.abs(sk.joints[..., 2]) > 0.5)  # z: metres in front of the camera
    assert set(np.unique(sk.tracking)) <= {1, 2}


def test_first_joint_values_and_body_id(shared_data):
    sk = read_skeleton(shared_data / "ntu60" / "S001C001P001R001A001.skeleton")
    # line 5 of the file: "0.2181153 0.1725972 3.785547 ..." and body id 72057594037931101 on line 3
    np.testing.assert_allclose(sk.joints[0, 0, 0], [0.2181153, 0.1725972, 3.785547], rtol=1e-7)
    assert sk.body_ids[0, 0] == 72057594037931101


def test_crlf_and_lf_agree(shared_data, tmp_path):
    src = shared_data / "ntu60" / "S001C001P001R001A001.skeleton"
    raw = src.read_bytes()
    assert b"\r\n" in raw
    lf = tmp_path / src.name
    lf.write_bytes(raw.replace(b"\r\n", b"\n"))
    a, b = read_skeleton(src), read_skeleton(lf)
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.body_ids, b.body_ids)


# --- generated files ------------------------------------------------------------------------------------------------

def _body(body_id, offset, joints=25, fields=12):
    lines = [f"{body_id} 0 1 1 1 1 0 0.1 0.2 2", str(joints)]
    for j in range(joints):
        values = [offset + 0.01 * j, 0.5, 3.0 + offset] + [0.0] * (fields - 4) + [2]
        lines.append(" ".join(f"{v:g}" for v in values))
    return lines


def write_skeleton(path, frames, newline="\n"):
    """frames: list of lists of (body_id, offset)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, offset in bodies:
            lines += _body(body_id, offset)
    path.write_text(newline.join(lines) + newline)
    return path


def test_three_bodies_and_empty_frames(tmp_path):
    ids = (72057594037931101, 72057594037931102, 72057594037931103)
    frames = [[(ids[0], 0.0)], [], [(ids[0], 0.1), (ids[1], 1.0), (ids[2], 2.0)], [(ids[1], 1.1), (ids[0], 0.2)]]
    sk = read_skeleton(write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames, "\r\n"))
    assert sk.joints.shape == (4, 3, 25, 3)
    assert sk.bodies_per_frame.tolist() == [1, 0, 3, 2]
    assert not np.any(sk.joints[1]) and (sk.body_ids[1] == -1).all()
    assert sk.joints[2, 2, 0, 0] == pytest.approx(2.0)
    by_id = sk.by_body_id()  # slot = body id in order of appearance: frame 3's swap is undone
    assert by_id.shape == (4, 3, 25, 3)
    assert by_id[3, 0, 0, 0] == pytest.approx(0.2) and by_id[3, 1, 0, 0] == pytest.approx(1.1)


def test_truncated_file_names_file_and_line(tmp_path):
    path = write_skeleton(tmp_path / "S001C001P001R001A002.skeleton", [[(1, 0.0)], [(1, 0.1)]])
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:40]) + "\n")  # frame 2 cut in the middle of its joints
    with pytest.raises(SkeletonFormatError, match=r"S001C001P001R001A002\.skeleton: line 41: .*truncated"):
        read_skeleton(path)


@pytest.mark.parametrize("line, replacement, message", [
    (10, "0.1 0.2 0.3", r"line 10: expected 12 numbers \(joint\), got 3"),
    (10, "0.1 0.2 abc 0 0 0 0 0 0 0 0 2", r"line 10: expected 12 numbers \(joint\), got '0.1 0.2 abc"),
    (3, "1 0 1 1 1 1 0 0.1 0.2", "line 3: expected a body info line of 10 fields, got 9"),
    (2, "two", r"line 2: expected the body count"),
])
def test_malformed_lines(tmp_path, line, replacement, message):
    path = write_skeleton(tmp_path / "S001C001P001R001A003.skeleton", [[(1, 0.0)]])
    lines = path.read_text().splitlines()
    lines[line - 1] = replacement
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SkeletonFormatError, match=message):
        read_skeleton(path)


def test_trailing_data_and_wrong_joint_count(tmp_path):
    path = write_skeleton(tmp_path / "a.skeleton", [[(1, 0.0)]])
    path.write_text(path.read_text() + "\n\n")  # blank lines at the end are fine
    assert read_skeleton(path).num_frames == 1
    path.write_text(path.read_text() + "1\n")
    with pytest.raises(SkeletonFormatError, match="line 32: unexpected data after the 1 frames"):
        read_skeleton(path)
    path.write_text("\n".join(["1", "1"] + _body(1, 0.0, joints=20)) + "\n")
    with pytest.raises(SkeletonFormatError, match="expected 25 joints per body, got 20"):
        read_skeleton(path)


# --- missing lists --------------------------------------------------------------------------------------------------

def test_missing_lists_with_and_without_header(shared_data):
    official = read_missing_list(shared_data / "ntu60" / "NTU_RGBD_samples_with_missing_skeletons.txt")
    bare = read_missing_list(shared_data / "ntu60" / "mmaction2" / "NTU_RGBD_samples_with_missing_skeletons.txt")
    assert len(official) == 302 and official == bare
    ntu120 = read_missing_list(shared_data / "ntu120" / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert len(ntu120) == 535 and official < ntu120
    assert "S001C002P005R002A008" in official
    assert not any(parse_sample_name(n).setup == 18 for n in ntu120)  # spec §4.2: none from S018


def test_missing_list_errors(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("header\n\nS001C002P005R002A008\nnot a name\n")
    with pytest.raises(ValueError, match="line 4: expected an NTU sample name"):
        read_missing_list(path)
    path.write_text("just words\n")
    with pytest.raises(ValueError, match="found none"):
        read_missing_list(path)
