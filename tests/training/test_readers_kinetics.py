"""Kinetics-skeleton JSON reader on the st-gcn demo output, and generated edge cases."""
import json

import numpy as np
import pytest

from sttr.training.readers.kinetics import KineticsFormatError, read_kinetics_labels, read_kinetics_video

DEMO = "kinetics/st-gcn-demo-output"


def test_swimming_frames_and_people(shared_data):
    video = read_kinetics_video(shared_data / DEMO / "swimming.json")
    assert video.joints.shape == (382, 4, 18, 3) and video.first_index == 0
    people = np.any(video.joints != 0, axis=(2, 3)).sum(axis=1)
    # SOURCES.md: persons per frame 0:145 frames, 1:174, 2:53, 3:9, 4:1
    assert np.bincount(people).tolist() == [145, 174, 53, 9, 1]
    raw = json.loads((shared_data / DEMO / "swimming.json").read_text())
    first = raw["data"][0]["skeleton"][0]
    np.testing.assert_allclose(video.joints[0, 0, :, 0], first["pose"][0::2], rtol=1e-6)
    np.testing.assert_allclose(video.joints[0, 0, :, 1], first["pose"][1::2], rtol=1e-6)
    np.testing.assert_allclose(video.joints[0, 0, :, 2], first["score"], rtol=1e-6)
    assert video.label == "unknown" and video.label_index == -1 and video.video_id == "swimming"


def test_frame_index_base_is_not_assumed(shared_data, tmp_path):
    raw = json.loads((shared_data / DEMO / "clean_and_jerk.json").read_text())
    for frame in raw["data"]:
        frame["frame_index"] += 1
    path = tmp_path / "one_based.json"
    path.write_text(json.dumps(raw))
    zero = read_kinetics_video(shared_data / DEMO / "clean_and_jerk.json")
    one = read_kinetics_video(path)
    assert one.first_index == 1 and zero.first_index == 0
    np.testing.assert_array_equal(one.joints, zero.joints)
    assert one.joints.shape == (300, 1, 18, 3)


def test_empty_video(shared_data):
    video = read_kinetics_video(shared_data / DEMO / "ta_chi.json")
    assert video.joints.shape == (0, 0, 18, 3) and video.first_index is None


def test_gaps_and_malformed(tmp_path):
    person = {"pose": [0.5] * 36, "score": [0.9] * 18}
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"data": [{"frame_index": 3, "skeleton": [person]},
                                         {"frame_index": 6, "skeleton": [person, person]}]}))
    video = read_kinetics_video(path)
    assert video.joints.shape == (4, 2, 18, 3) and not np.any(video.joints[1:3])
    path.write_text(json.dumps({"data": [{"frame_index": 0, "skeleton": [{"pose": [0.5] * 34, "score": [1] * 18}]}]}))
    with pytest.raises(KineticsFormatError, match=r"v\.json: data\[0\]\.skeleton\[0\]: expected 'pose' of 36"):
        read_kinetics_video(path)
    path.write_text("{not json")
    with pytest.raises(KineticsFormatError, match="not valid JSON"):
        read_kinetics_video(path)
    path.write_text(json.dumps({"frames": []}))
    with pytest.raises(KineticsFormatError, match="'data' list"):
        read_kinetics_video(path)


def test_label_file(tmp_path):
    path = tmp_path / "kinetics_val_label.json"
    path.write_text(json.dumps({"abc": {"has_skeleton": True, "label": "swimming", "label_index": 5},
                                "def": {"has_skeleton": False, "label": "x", "label_index": 1}}))
    labels = read_kinetics_labels(path)
    assert labels["abc"].label_index == 5 and not labels["def"].has_skeleton
    path.write_text(json.dumps({"abc": {"label": "swimming"}}))
    with pytest.raises(KineticsFormatError, match="entry 'abc'"):
        read_kinetics_labels(path)
