"""MediaPipe's C++ start-up chatter is held back and dropped; every other line written to fd 2 still comes out."""
from __future__ import annotations

import os

import pytest

from sttr.realtime.sources.native_log_filter import native_stderr_filtered


def test_known_noise_is_dropped_and_everything_else_comes_out_in_order(capfd):
    with native_stderr_filtered():
        os.write(2, b"INFO: [environment.cc:36] Creating LiteRT environment with options\n")
        os.write(2, b"a real C++ error\n")
        for _ in range(3):
            os.write(2, b"WARNING: [model_load.cc:402] Sparsity tensors may not yet be fully supported.\n")
        os.write(2, b"more from C++\n")
        os.write(2, b"WARNING: Logging before InitGoogle() is written to STDERR\nlast line without newline")
        assert capfd.readouterr().err == ""  # held back while inside
    err = capfd.readouterr().err
    assert err == "a real C++ error\nmore from C++\nlast line without newline"
    os.write(2, b"INFO: [after] not filtered any more\n")
    assert capfd.readouterr().err == "INFO: [after] not filtered any more\n"


def test_an_error_inside_still_restores_stderr_and_writes_what_was_held(capfd):
    with pytest.raises(RuntimeError):
        with native_stderr_filtered():
            os.write(2, b"before the error\n")
            raise RuntimeError("boom")
    assert capfd.readouterr().err == "before the error\n"
    os.write(2, b"fd 2 is back\n")
    assert capfd.readouterr().err == "fd 2 is back\n"


def test_a_real_landmarker_starts_and_stops_quietly(shared_data, capfd):
    pytest.importorskip("mediapipe")
    from sttr.realtime.sources.mediapipe_pose import PoseEstimator

    model = shared_data / "models" / "pose_landmarker_full.task"
    if not model.is_file():
        pytest.skip(f"{model} is not there (the MediaPipe pose model from ../shared/data/models)")
    capfd.readouterr()
    PoseEstimator(model).close()
    err = capfd.readouterr().err
    assert "Sparsity tensors" not in err and "Creating LiteRT environment" not in err, err
