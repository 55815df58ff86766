"""OpenPose per-frame JSON folders -> sequences, checked against the Kinetics JSON made from the same output."""
import json

import numpy as np
import pytest

from sttr.model.openpose_json import OpenPoseJsonError
from sttr.training.readers.kinetics import read_kinetics_video
from sttr.training.readers.openpose import read_openpose_folder


@pytest.mark.parametrize("name, width, height", [("clean_and_jerk", 340, 256), ("swimming", 960, 540)])
def test_folder_matches_the_kinetics_json(shared_data, name, width, height):
    seq = read_openpose_folder(shared_data / "openpose" / f"coco18_{name}")
    video = read_kinetics_video(shared_data / "kinetics/st-gcn-demo-output" / f"{name}.json")
    assert seq.layout == "openpose18"
    assert seq.frame_indices.tolist() == list(range(len(video.joints)))
    assert seq.joints.shape == video.joints.shape
    scaled = seq.joints / np.array([width, height, 1], np.float32)  # the demo normalised by the frame size
    np.testing.assert_allclose(scaled, video.joints, atol=1e-5)


def test_frames_in_index_order(tmp_path):
    for index in (10, 2, 1):  # name order (10 < 2 as text) differs from index order
        person = {"pose_keypoints_2d": [float(index)] * 75}
        (tmp_path / f"clip_{index:d}_keypoints.json").write_text(json.dumps({"people": [person]}))
    (tmp_path / "clip_5_keypoints.json").write_text(json.dumps({"people": []}))
    seq = read_openpose_folder(tmp_path)
    assert seq.layout == "body25" and seq.frame_indices.tolist() == [1, 2, 5, 10]
    assert seq.joints[:, 0, 0, 0].tolist() == [1, 2, 0, 10]


def test_mixed_layouts_and_empty_folder(tmp_path):
    (tmp_path / "a_0_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 75}]}))
    (tmp_path / "a_1_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 54}]}))
    with pytest.raises(OpenPoseJsonError, match=r"a_1_keypoints\.json: people\[0\] is openpose18"):
        read_openpose_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="found none"):
        read_openpose_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_openpose_folder(tmp_path / "absent")
