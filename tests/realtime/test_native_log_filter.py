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
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"W0000 00:00:1795908192.278905    7072 inference_runner_litert.cc:1433] Input tensor memory is "
                    b"not aligned according to LiteRt's memory alignment requirements. Reallocating memory and "
                    b"copying data.\n")
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
    # the first inference's lines come out at start-up (a warm-up on an empty image), where they are dropped
    import numpy as np

    with PoseEstimator(model) as estimator:
        capfd.readouterr()
        estimator.detect(np.full((240, 320, 3), 90, np.uint8), 0.0)
    err = capfd.readouterr().err
    for line in ("XNNPACK delegate", "Input tensor memory is not aligned", "Logging before InitGoogle"):
        assert line not in err, err
