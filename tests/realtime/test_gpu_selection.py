"""How `auto` finds a GPU and copes with a backend that fails to start, and ONNX Runtime's silent CPU fallback: tested
here without a GPU by faking what a GPU machine reports."""
from __future__ import annotations

import logging
import types
from pathlib import Path

import pytest

from sttr.realtime import engines
from sttr.realtime.engines import cuda_buffers

DEMO = Path(engines.__file__).resolve().parents[1] / "demo" / "bundle"


@pytest.mark.parametrize("err, count, usable", [(0, 1, True), (0, 0, False), (100, 0, False), (35, 0, True)])
def test_only_cudas_no_device_error_means_no_gpu(monkeypatch, err, count, usable):
    """cudaErrorInsufficientDriver (35: cuda-python 13 on a CUDA 12 driver) is cuda-python's problem, not a missing
    GPU: auto must still try TensorRT/torch there (it skipped them)."""
    monkeypatch.setattr(engines.os.path, "exists", lambda p: p == "/dev/nvidia0")
    monkeypatch.setattr(engines, "_has", lambda module: module == "cuda")
    fake = types.SimpleNamespace(cudaGetDeviceCount=lambda: (err, count))
    monkeypatch.setattr(cuda_buffers, "_cudart", lambda: fake)
    assert engines._gpu_visible() is usable


def test_auto_moves_on_whatever_stops_a_backend(monkeypatch, caplog):
    """A TensorRT/pybind TypeError (or torch's ValueError) in the first backend tried must not end `auto`."""
    class Broken:
        backend = "tensorrt"

        def __init__(self, bundle, precision):
            raise TypeError("incompatible function arguments")

    real = engines._backend_class
    monkeypatch.setattr(engines, "auto_backend_order", lambda bundle, precision: ["tensorrt", "onnxruntime"])
    monkeypatch.setattr(engines, "_backend_class", lambda name: Broken if name == "tensorrt" else real(name))
    with caplog.at_level(logging.WARNING):
        engine = engines.open_engine(DEMO, "auto", "fp32")
    assert engine.backend == "onnxruntime" and "incompatible function arguments" in caplog.text
    engine.close()


def test_onnxruntime_cuda_that_did_not_start_is_an_error_when_asked_for(monkeypatch, caplog):
    """onnxruntime-gpu lists the CUDA provider where it cannot start (no CUDA/cuDNN libraries) and then runs on the
    CPU without a word: asked for by name that is an error, under auto a warning."""
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(RuntimeError, match="CUDA execution provider did not start"):
        engines.open_engine(DEMO, "onnxruntime", "fp32", device="cuda")
    with caplog.at_level(logging.WARNING):
        engine = engines.open_engine(DEMO, "onnxruntime", "fp32")
    assert "did not start" in caplog.text and engine.info.device == "cpu"
    engine.close()
