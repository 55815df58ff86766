"""OpenPose --write_json folder source on the real clean-and-jerk sequence (COCO-18, 340x256)."""
from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest

from sttr.realtime.sources.openpose_dir import OpenPoseDirSource, OpenPoseJsonError, parse_openpose_file

N_FILES = 40
BAD = 17  # this frame's file is written broken and never completed


@pytest.fixture(scope="module")
def sequence(shared_data):
    files = sorted((shared_data / "openpose" / "coco18_clean_and_jerk").glob("*_keypoints.json"))
    assert len(files) == 300
    return files[:N_FILES]


def _raw(path):
    """The first person's keypoints straight from the file, (18, 3)."""
    return np.array(json.loads(path.read_text())["people"][0]["pose_keypoints_2d"], np.float32).reshape(18, 3)


def _writer(files, dest, stop):
    """Copy files one by one like OpenPose writing them: some in two chunks, one left malformed."""
    for i, src in enumerate(files):
        if stop.is_set():
            return
        target = dest / src.name
        data = src.read_bytes()
        if i == BAD:
            target.write_bytes(data[: len(data) // 2])  # truncated for good
        elif i % 5 == 0:
            with open(target, "wb") as f:  # half now, the rest a little later: must not be read half-written
                f.write(data[: len(data) // 2])
                f.flush()
                time.sleep(0.03)
                f.write(data[len(data) // 2:])
        else:
            shutil.copyfile(src, target)
        time.sleep(0.005)


def test_follows_a_folder_being_written(sequence, tmp_path):
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(sequence, tmp_path, stop))
    frames = []
    with OpenPoseDirSource(tmp_path, follow=True, image_size=(340, 256), complete_wait_s=0.8,
                           idle_timeout_s=1.0, poll_interval_s=0.005) as source:
        writer.start()
        try:
            for frame in source:
                frames.append(frame)
        finally:
            stop.set()
            writer.join()
    expected = [i for i in range(N_FILES) if i != BAD]
    assert [f.index for f in frames] == expected
    assert all(f.layout == "openpose18" and f.joints.shape == (1, 18, 2) for f in frames)
    assert all(b.timestamp_ms >= a.timestamp_ms for a, b in zip(frames, frames[1:]))
    for frame in frames[::7]:
        raw = _raw(sequence[frame.index])
        np.testing.assert_allclose(frame.joints[0], raw[:, :2] / (340, 256), rtol=1e-6)
        np.testing.assert_allclose(frame.scores[0], raw[:, 2])
    assert source.stats["frames"] == N_FILES - 1 and source.stats["skipped"] == 1
    assert source.stats["waited"] >= 2  # the broken file and at least one file seen half-written, then read whole
    assert len(source.errors) == 1 and sequence[BAD].name in source.errors[0] and source.frames_dropped == 1


def test_finished_folder_and_a_malformed_file(sequence, tmp_path):
    for src in sequence[:10]:
        shutil.copyfile(src, tmp_path / src.name)
    (tmp_path / sequence[4].name).write_text('{"version":1.3,"people":[{"pose_keypoints_2d":[1,2]}]}')
    with OpenPoseDirSource(tmp_path, follow=False, fps=30.0) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert "54 (COCO-18)" in source.errors[0]
    np.testing.assert_allclose(frames[0].joints[0], _raw(sequence[0])[:, :2])  # pixels without image_size
    assert frames[3].timestamp_ms == pytest.approx(100.0)


def test_a_backlog_is_read_as_history_spaced_at_the_video_rate(sequence, tmp_path):
    """Files already there when following starts (OpenPose started first) were read in a burst, all stamped "now":
    the ring buffer saw them arrive together. The newest `backlog_frames` are stamped at the video's rate ending
    now, the older ones passed over; files that arrive later are live."""
    for src in sequence[:30]:
        shutil.copyfile(src, tmp_path / src.name)
    frames = []
    with OpenPoseDirSource(tmp_path, follow=True, backlog_frames=12, fps=25.0, idle_timeout_s=0.3,
                           poll_interval_s=0.005) as source:
        for frame in source:
            frames.append(frame)
            if len(frames) == 12:  # the backlog is in: OpenPose writes the next frame, and a late older one
                time.sleep(0.05)
                shutil.copyfile(sequence[30], tmp_path / sequence[30].name)
                shutil.copyfile(sequence[3], tmp_path / "late_000000000003_keypoints.json")
    assert [f.index for f in frames] == list(range(18, 31))
    stamps = np.array([f.timestamp_ms for f in frames])
    np.testing.assert_allclose(np.diff(stamps[:12]), 40.0, atol=1e-6)  # 25 fps
    assert stamps[12] - stamps[11] >= 50.0  # the live frame arrived later
    assert source.stats["backlog_passed"] == 18 and source.stats["skipped"] == 1  # the late frame 3: out of order
    with pytest.raises(ValueError, match="backlog_frames must be >= 0"):
        OpenPoseDirSource(tmp_path, backlog_frames=-1)


def test_body25_and_empty_frames(tmp_path):
    person = np.arange(75, dtype=np.float32)
    person[2::3] = 0.5
    person[5] = 0.0  # the neck undetected
    (tmp_path / "v_000000000000_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d":
                                                                                   person.tolist()}]}))
    (tmp_path / "v_000000000001_keypoints.json").write_text(json.dumps({"people": []}))
    (tmp_path / "v_000000000002_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d":
                                                                                   [0.0] * 54}]}))
    source = OpenPoseDirSource(tmp_path, follow=False)
    frames = list(source)
    assert len(frames) == 2 and "body25" in source.errors[0]  # a COCO-18 file in a BODY_25 folder is skipped
    assert frames[0].layout == "body25" and frames[0].joints.shape == (1, 25, 2)
    np.testing.assert_array_equal(frames[0].joints[0, 0], [0.0, 1.0])
    np.testing.assert_array_equal(frames[0].joints[0, 1], [0.0, 0.0])  # score 0 -> zero coordinates
    assert frames[1].layout == "body25" and frames[1].joints.shape == (0, 25, 2)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--write_json"):
        OpenPoseDirSource(tmp_path / "missing")
    bad = tmp_path / "x_keypoints.json"
    bad.write_text("[1, 2]")
    with pytest.raises(OpenPoseJsonError, match="'people' list"):
        parse_openpose_file(bad)
