"""OpenCV capture: real video files, newest-wins pacing, missing cameras."""
from __future__ import annotations

import itertools
import subprocess
import sys
import time

import numpy as np
import pytest

from sttr.realtime.sources.capture import CameraNotFoundError, VideoCapture, parse_source


def test_parse_source(tmp_path):
    assert parse_source(0) == ("camera", 0)
    assert parse_source("2") == ("camera", 2)
    assert parse_source("rtsp://10.0.0.2/stream") == ("url", "rtsp://10.0.0.2/stream")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_source(tmp_path / "missing.mp4")


def test_every_frame_of_a_real_video_then_the_end(shared_data):
    path = shared_data / "video" / "clean_and_jerk.mp4"  # 300 frames, 340x256, 29.97 fps
    with VideoCapture(path, realtime=False) as cap:
        frames = list(cap)
        assert cap.state == "ended"
        assert cap.read() is None  # stays ended
    assert len(frames) == 300
    assert [f.index for f in frames] == list(range(300))
    assert frames[0].image.shape == (256, 340, 3) and frames[0].image.dtype == np.uint8
    assert abs(cap.fps - 29.97) < 0.01
    np.testing.assert_allclose(frames[30].media_ms, 30 * 1000 / cap.fps)
    assert all(b.timestamp_ms >= a.timestamp_ms for a, b in zip(frames, frames[1:]))
    assert cap.stats.dropped == 0 and cap.stats.delivered == 300


def test_realtime_file_newest_frame_wins_and_counts_drops(shared_data):
    path = shared_data / "video" / "clean_and_jerk.mp4"
    fast = lambda: time.monotonic() * 20.0  # noqa: E731 - plays the 10 s clip in about 0.5 s of wall time
    with VideoCapture(path, realtime=True, clock=fast) as cap:
        got = []
        for frame in cap:
            got.append(frame.index)
            time.sleep(0.01)  # a slow consumer: the capture thread must drop, not queue
        assert cap.state == "ended"
    assert got == sorted(got) and len(set(got)) == len(got)
    assert got[-1] <= 299 and len(got) < 300
    assert cap.stats.dropped > 0
    assert cap.stats.delivered == len(got)
    assert cap.stats.read == cap.stats.delivered + cap.stats.dropped == len(got) + cap.frames_dropped


def test_missing_camera_is_one_clear_line():
    with pytest.raises(CameraNotFoundError) as info:
        VideoCapture(97)
    msg = str(info.value)
    assert "camera 97" in msg and "--camera" in msg and "\n" not in msg


def test_missing_camera_keeps_opencv_quiet():
    # OpenCV's backends each log their failure (V4L2 WARN, an FFmpeg exception dump, obsensor ERROR) on fd 2
    code = ("import cv2\nfrom sttr.realtime.sources.capture import CameraNotFoundError, VideoCapture\n"
            "level = cv2.utils.logging.getLogLevel()\n"
            "try:\n    VideoCapture(97)\nexcept CameraNotFoundError:\n    pass\n"
            "assert cv2.utils.logging.getLogLevel() == level\nprint('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    assert res.stderr == "", res.stderr


def test_realtime_false_is_for_files_only():
    with pytest.raises(ValueError, match="video files"):
        VideoCapture("rtsp://127.0.0.1:1/none", realtime=False)


class _FakeCap:
    """A camera that delivers `frames` frames and then fails, like an unplugged USB camera."""

    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        time.sleep(0.002)
        return True, np.zeros((4, 4, 3), np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        pass


def test_lost_camera_is_reopened_with_backoff_and_reported(monkeypatch):
    opens = iter([_FakeCap(5), None, None, _FakeCap(3)])  # first open, two failed reopens, then back

    def fake_open(self):
        cap = next(opens)
        if cap is None:
            raise CameraNotFoundError("camera 0 could not be opened")
        return cap

    monkeypatch.setattr(VideoCapture, "_open", fake_open)
    cap = VideoCapture(0, retry_delays_s=(0.01, 0.02), max_retries=3)
    got = []
    try:
        while len(got) < 8:
            frame = cap.read(timeout_s=5.0)
            assert frame is not None, f"no frame after {got}"
            got.append(frame.index)
    finally:
        cap.close()
    assert got == sorted(got) and got[-1] >= 7
    assert cap.stats.reconnects == 1
    assert "stopped delivering" in cap.stats.errors[0]
    assert "reconnect attempt 2 failed" in cap.stats.errors[2]


def test_camera_lost_for_good_raises_after_max_retries(monkeypatch):
    opens = iter([_FakeCap(2)])

    def fake_open(self):
        cap = next(opens, None)
        if cap is None:
            raise CameraNotFoundError("camera 0 could not be opened")
        return cap

    monkeypatch.setattr(VideoCapture, "_open", fake_open)
    with VideoCapture(0, retry_delays_s=(0.005,), max_retries=2) as cap:
        from sttr.realtime.sources.capture import CaptureError
        with pytest.raises(CaptureError, match="not back after 2 attempts"):
            for _ in range(10):
                cap.read(timeout_s=5.0)
        assert cap.state == "failed"


def test_mirror_flips_left_right(shared_data):
    path = shared_data / "video" / "clean_and_jerk.mp4"
    with VideoCapture(path, realtime=False) as plain, VideoCapture(path, realtime=False, mirror=True) as mirrored:
        a, b = plain.read(), mirrored.read()
    np.testing.assert_array_equal(b.image, a.image[:, ::-1])


@pytest.mark.parametrize("backlog", [1, 3])
def test_a_realtime_capture_keeps_the_newest_backlog_frames_and_drops_older_ones(shared_data, backlog):
    # after the consumer stalls, it gets the oldest of the `backlog` newest frames next (a burst of slow pose frames
    # then costs delay, not frames); everything older was dropped and counted. backlog=1 is strictly newest-wins.
    path = shared_data / "video" / "clean_and_jerk.mp4"
    with VideoCapture(path, realtime=True, backlog=backlog) as cap:
        first = cap.read()
        time.sleep(0.5)  # ~15 frames of the file's 30 fps arrive meanwhile
        after = [cap.read() for _ in range(backlog)]
        newest = cap.stats.read - 1  # index of the newest frame read from the file so far
    assert first.index == 0
    assert [f.index for f in after] == list(range(after[0].index, after[0].index + backlog))
    assert newest - after[0].index in (backlog - 1, backlog)  # (one more frame may arrive while reading)
    assert cap.stats.dropped >= after[0].index - 1 >= 8
    with pytest.raises(ValueError, match="backlog"):
        VideoCapture(path, backlog=0)


def test_realtime_file_starts_playing_at_the_first_read_and_stamps_arrival(shared_data):
    # a file opened and not yet read must not play (models load in between): nothing read or dropped before the
    # first read; each frame is stamped when it is due (as a camera's frame arrives), not when it was decoded ahead
    path = shared_data / "video" / "clean_and_jerk.mp4"
    with VideoCapture(path, realtime=True) as cap:
        time.sleep(0.3)  # 9 frames' worth of the file's time
        assert cap.stats.read == 0 and cap.stats.dropped == 0
        t_read_ms = time.monotonic() * 1e3
        frames = list(itertools.islice(cap, 10))
    assert [f.index for f in frames] == list(range(10)) and cap.stats.dropped == 0
    for f in frames:  # the file's clock starts at the first read: frame k is due k / fps after it
        assert f.timestamp_ms >= t_read_ms + f.index * 1000.0 / cap.fps - 1.0


def test_a_looped_file_plays_again_as_one_stream(shared_data):
    path = shared_data / "video" / "clean_and_jerk.mp4"
    with VideoCapture(path, realtime=False) as once:
        n = sum(1 for _ in once)
    with VideoCapture(path, realtime=False, loops=2) as cap:
        frames = [(f.index, f.media_ms, f.image[::64, ::64].copy()) for f in cap]
    assert [i for i, _, _ in frames] == list(range(2 * n))
    assert all(b[1] > a[1] for a, b in zip(frames, frames[1:]))  # media time goes on across the seam
    np.testing.assert_array_equal(frames[0][2], frames[n][2])  # the second play starts with the first frame
    with pytest.raises(ValueError, match="loops"):
        VideoCapture(path, loops=0)
    with pytest.raises(ValueError, match="loops"):
        VideoCapture(0, loops=2)
