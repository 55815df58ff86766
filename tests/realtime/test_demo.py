"""The README's first command: `sttr-live --demo` through the real pipeline, ZeroMQ and a subscriber."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from sttr.realtime.demo import SEQUENCES_DIR, build_playlist
from sttr.realtime.default_model import default_bundle_dir
from sttr.realtime.sources.replay import load_replay


def _run_demo(*extra: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from sttr.realtime.cli.live import main; sys.exit(main())",
           "--demo", "--pub", "tcp://127.0.0.1:*", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    m = re.search(r"demo: (\d+) predictions received over ZeroMQ; (\d+)/(\d+) windows .*final answer right for "
                  r"(\d+)/(\d+) recordings", result.stderr)
    assert m, result.stderr[-3000:]
    received, correct, scored, right, recordings = map(int, m.groups())
    published = int(re.search(r"predictions (\d+), errors 0", result.stderr).group(1))
    assert received == published > 0  # every published prediction reached the subscriber
    assert recordings == 10 and scored > 0
    # The shipped model scores 78 % on the test subjects; the demo recordings must be mostly right.
    assert right >= 6, result.stdout[-3000:]
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("#")]
    assert len(lines) == received
    seqs = [int(re.match(r"#(\d+)", ln).group(1)) for ln in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, no duplicates
    assert "latency (ms)" in result.stderr and "using the bundled demo model" in result.stderr


def test_demo_as_fast_as_possible():
    _check(_run_demo("--fast"))


@pytest.mark.slow
def test_demo_at_the_recordings_real_rate():
    """Exactly the README's first command (about 45 s: the recordings play at 15 fps)."""
    _check(_run_demo())


def test_demo_assets_are_held_out_and_consistent():
    bundle = default_bundle_dir()
    assert (bundle / "MODEL_CARD.md").is_file()
    playlist, segments = build_playlist()
    names = [s.name for s in segments]
    assert all(int(n[5:7]) % 2 == 0 for n in names)  # test subjects of the cross-subject protocol only
    assert playlist.layout == "kinect20" and playlist.fps == 15.0
    rec = load_replay(sorted(SEQUENCES_DIR.glob("*.npz"))[0])
    first = segments[0]
    np.testing.assert_array_equal(playlist.joints[first.first:first.first + rec.num_frames], rec.joints)
    np.testing.assert_array_equal(playlist.joints[first.first + rec.num_frames:first.last + 1], rec.joints)


def test_demo_refuses_no_pub():
    result = _run_demo("--no-pub", timeout=60)
    assert result.returncode != 0 and "--no-pub" in result.stderr


def test_demo_puts_the_pose_model_in_place(tmp_path, shared_data):
    """After the first command the webcam path has its MediaPipe model (here: from a pre-filled cache)."""
    import os
    import shutil

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(shared_data / "models" / "pose_landmarker_full.task", cache / "pose_landmarker_full.task")
    result = _run_demo("--fast", env={**os.environ, "STTR_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"pose model for --camera/--video: {cache / 'pose_landmarker_full.task'}" in result.stderr
