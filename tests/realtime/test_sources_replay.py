"""Replay of a recorded skeleton sequence, timed on a fake clock."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.realtime.sources.replay import ReplaySource, load_replay, save_replay


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _recording(tmp_path, frames=10, fps=15.0):
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(frames, 2, 20, 3)).astype(np.float32)
    joints[:, 1] = 0.0  # the second person slot is padding
    joints[3, 1] = 1.0  # ... except in frame 3
    path = save_replay(tmp_path / "a01_s01_e01.npz", joints, None, fps, "kinect20", label="high arm wave",
                       name="a01_s01_e01")
    return path, joints


def test_real_rate_on_a_fake_clock(tmp_path):
    path, joints = _recording(tmp_path)
    clock = FakeClock()
    with ReplaySource(path, clock=clock, sleep=clock.sleep) as source:
        assert source.label == "high arm wave" and source.fps == 15.0 and source.layout == "kinect20"
        frames = []
        for frame in source:
            frames.append((frame, clock.now))
            clock.now += 0.01  # the consumer takes 10 ms per frame, less than the 66.7 ms period
    assert [f.index for f, _ in frames] == list(range(10))
    stamps = np.array([f.timestamp_ms for f, _ in frames])
    np.testing.assert_allclose(np.diff(stamps), 1000 / 15, rtol=1e-9)
    np.testing.assert_allclose([t for _, t in frames], 100.0 + np.arange(10) / 15, rtol=1e-12)  # delivered on time
    assert sum(clock.sleeps) == pytest.approx(9 / 15 - 9 * 0.01)
    # padding persons are left out; a frame where the second slot holds someone keeps it
    assert [f.num_persons for f, _ in frames] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(frames[5][0].joints[0], joints[5, 0])


def test_as_fast_as_possible_and_speed(tmp_path):
    path, _ = _recording(tmp_path)
    clock = FakeClock()
    frames = list(ReplaySource(path, realtime=False, clock=clock, sleep=clock.sleep))
    assert len(frames) == 10 and clock.sleeps == []
    np.testing.assert_allclose(frames[-1].timestamp_ms - frames[0].timestamp_ms, 9 * 1000 / 15)
    clock = FakeClock()
    list(ReplaySource(path, speed=3.0, clock=clock, sleep=clock.sleep))
    assert clock.now - 100.0 == pytest.approx(9 / 45)


def test_drop_late_skips_to_the_frame_due_now(tmp_path):
    path, _ = _recording(tmp_path, frames=20)
    clock = FakeClock()
    with ReplaySource(path, drop_late=True, clock=clock, sleep=clock.sleep) as source:
        got = []
        for frame in source:
            got.append(frame.index)
            clock.now += 0.2  # a consumer three periods slow
    assert got[0] == 0 and got[-1] == 19 and len(got) < 20
    assert source.frames_dropped == 20 - len(got)


def test_loop_keeps_counting_until_closed(tmp_path):
    path, _ = _recording(tmp_path, frames=4)
    clock = FakeClock()
    source = ReplaySource(path, loop=True, realtime=False, clock=clock, sleep=clock.sleep)
    got = []
    for frame in source:
        got.append(frame.index)
        if len(got) == 10:
            source.close()
    assert got == list(range(10))


def test_bad_recordings_are_named(tmp_path):
    with pytest.raises(ValueError, match="has 20 joints"):
        save_replay(tmp_path / "x.npz", np.zeros((3, 1, 25, 3)), None, 30.0, "kinect20")
    np.savez(tmp_path / "y.npz", joints=np.zeros((3, 1, 20, 3)))
    with pytest.raises(ValueError, match=r"missing \['fps', 'layout'\]"):
        load_replay(tmp_path / "y.npz")
    with pytest.raises(FileNotFoundError):
        ReplaySource(tmp_path / "none.npz")
    (tmp_path / "clip.mp4").write_text("# not a recording")
    with pytest.raises(ValueError, match="clip.mp4 is not a skeleton recording") as info:
        load_replay(tmp_path / "clip.mp4")
    assert "pickle" not in str(info.value)  # never a nudge towards unsafe loading
    rec = load_replay(_recording(tmp_path)[0])
    assert rec.name == "a01_s01_e01" and rec.num_frames == 10 and rec.scores.shape == (10, 2, 20)


def test_replays_a_real_msr_action3d_sequence(shared_data, tmp_path):
    path = shared_data / "small" / "MSRAction3D" / "real_world_coordinates" / "a01_s01_e01_skeleton3D.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    raw = np.loadtxt(path).reshape(-1, 20, 4)  # (T, V, x y z c)
    rec = save_replay(tmp_path / "a01_s01_e01.npz", raw[:, None, :, :3], raw[:, None, :, 3], 15.0, "kinect20",
                      label="high arm wave", name="a01_s01_e01")
    clock = FakeClock()
    frames = list(ReplaySource(rec, clock=clock, sleep=clock.sleep))
    assert len(frames) == raw.shape[0] and all(f.num_persons == 1 for f in frames)
    np.testing.assert_allclose(frames[7].joints[0], raw[7, :, :3], rtol=1e-6)
    np.testing.assert_allclose(frames[7].scores[0], raw[7, :, 3], rtol=1e-6)
    assert clock.now - 100.0 == pytest.approx((raw.shape[0] - 1) / 15.0)
