"""One OpenPose --write_json file: layout detection, shapes and clear errors."""
import json

import numpy as np
import pytest

from sttr.model.openpose_json import OpenPoseJsonError, frame_index_from_name, read_openpose_json


def test_real_coco18_file(shared_data):
    path = shared_data / "openpose/coco18_swimming/swimming_000000000000_keypoints.json"
    joints, layout = read_openpose_json(path)
    assert layout == "openpose18" and joints.shape == (1, 18, 3) and joints.dtype == np.float32
    values = json.loads(path.read_text())["people"][0]["pose_keypoints_2d"]
    np.testing.assert_allclose(joints[0].ravel(), values, rtol=1e-6)
    assert frame_index_from_name(path) == 0


def test_body25_and_empty(tmp_path):
    path = tmp_path / "f_000000000007_keypoints.json"
    people = [{"pose_keypoints_2d": list(np.arange(75.0))}, {"pose_keypoints_2d": [0.0] * 75}]
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    joints, layout = read_openpose_json(path)
    assert layout == "body25" and joints.shape == (2, 25, 3)
    assert joints[0, 1].tolist() == [3.0, 4.0, 5.0]  # joint 1 = values 3, 4, 5
    assert frame_index_from_name(path) == 7
    path.write_text(json.dumps({"people": []}))
    assert read_openpose_json(path)[0].shape == (0, 0, 3) and read_openpose_json(path)[1] is None
    assert read_openpose_json(path, layout="body25")[0].shape == (0, 25, 3)


@pytest.mark.parametrize("content, message", [
    ({"people": [{"pose_keypoints_2d": [0.0] * 50}]}, r"has 50 values; expected 75 \(BODY_25\) or 54 \(COCO-18\)"),
    ({"version": 1.3}, "'people' list"),
    ({"people": [{"face_keypoints_2d": []}]}, r"people\[0\] has no 'pose_keypoints_2d'"),
    ({"people": [{"pose_keypoints_2d": ["a"] * 54}]}, "numbers only"),
])
def test_malformed_files_name_file_and_expectation(tmp_path, content, message):
    path = tmp_path / "bad_keypoints.json"
    path.write_text(json.dumps(content))
    with pytest.raises(OpenPoseJsonError, match=message) as err:
        read_openpose_json(path)
    assert str(path) in str(err.value)


def test_not_json_and_wrong_layout(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{")
    with pytest.raises(OpenPoseJsonError, match=r"x\.json: not valid JSON"):
        read_openpose_json(path)
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 54}]}))
    with pytest.raises(OpenPoseJsonError, match="body25 .* was expected"):
        read_openpose_json(path, layout="body25")
