"""SkeletonFrame validation and helpers."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.realtime.frame import SkeletonFrame


def test_frame_casts_and_checks_shapes():
    f = SkeletonFrame("ntu25", 1.5, 0, np.zeros((2, 25, 3), np.float64), np.ones((2, 25)), track_ids=[3, 4])
    assert f.joints.dtype == np.float32 and f.scores.dtype == np.float32
    assert (f.num_persons, f.num_joints, f.num_dims) == (2, 25, 3)
    assert f.timings_ms == {} and f.image is None
    with pytest.raises(ValueError, match=r"\(P, V, 2\|3\)"):
        SkeletonFrame("ntu25", 0, 0, np.zeros((25, 3)), np.ones(25))
    with pytest.raises(ValueError, match="scores"):
        SkeletonFrame("ntu25", 0, 0, np.zeros((1, 25, 3)), np.ones((1, 24)))
    with pytest.raises(ValueError, match="track_ids"):
        SkeletonFrame("ntu25", 0, 0, np.zeros((1, 25, 3)), np.ones((1, 25)), track_ids=[1, 2])


def test_empty_and_select():
    e = SkeletonFrame.empty("openpose18", 18, 2, 10.0, 5)
    assert e.joints.shape == (0, 18, 2) and e.scores.shape == (0, 18) and e.index == 5
    joints = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    f = SkeletonFrame("x", 0, 0, joints, np.ones((2, 3)), track_ids=[8, 9], timings_ms={"pose": 2.0})
    g = f.select([1])
    assert g.track_ids == [9] and g.timings_ms == {"pose": 2.0}
    np.testing.assert_array_equal(g.joints[0], joints[1])


def test_inputs_import_without_heavy_dependencies():
    # torch blocked; mediapipe, cv2 and zmq must not be imported until a source is opened
    import subprocess
    import sys

    modules = ["frame", "adapters", "tracker", "sources", "sources.capture", "sources.mediapipe_pose",
               "sources.pose_model", "sources.openpose_dir", "sources.zmq_skeleton", "sources.replay"]
    code = ("import sys; sys.modules['torch'] = None\n"
            + "".join(f"import sttr.realtime.{m}\n" for m in modules)
            + "heavy = [m for m in ('torch', 'mediapipe', 'cv2', 'zmq', 'msgpack') if sys.modules.get(m) is not None]\n"
            + "assert not heavy, heavy\nprint('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
