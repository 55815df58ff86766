"""TensorRT backend: cache keys, profile shapes, the network flags per TensorRT version (here, with a fake
TensorRT module), and on a GPU (`-m gpu`) real engines checked against ONNX Runtime."""
from __future__ import annotations

import types

import numpy as np
import pytest

from sttr.model.bundle import InputSpec
from sttr.realtime.engines import tensorrt_engine as te

SPEC = InputSpec(C=3, T=64, V=25, M=2, layout="ntu25", preprocess={"window": 64})


def _key(**change):
    base = dict(onnx_sha256="ab" * 32, precision="int8", tensorrt="10.13.0", gpu="NVIDIA H100 80GB HBM3",
                compute_capability="9.0", profile=te.profile_shapes(SPEC, 8))
    return te.EngineCacheKey(**{**base, **change})


def test_profile_shapes_cover_batch_1_to_max():
    assert te.profile_shapes(SPEC, 8, 2) == ((1, 3, 64, 25, 2), (2, 3, 64, 25, 2), (8, 3, 64, 25, 2))
    dynamic = InputSpec(C=3, T=None, V=25, M=2, preprocess={"window": 300})
    assert te.profile_shapes(dynamic, 4)[2] == (4, 3, 300, 25, 2)
    assert te.profile_shapes(dynamic, 4, frames=(16, 64, 300))[0] == (1, 3, 16, 25, 2)
    with pytest.raises(ValueError, match="opt_batch"):
        te.profile_shapes(SPEC, 2, 4)


def test_cache_key_names_gpu_version_precision_and_changes_with_each():
    key = _key()
    name = key.file_name()
    assert name.startswith("abababababab-int8-b8-trt10.13.0-nvidia-h100-80gb-hbm3-sm90-") and name.endswith(".engine")
    changes = [dict(precision="fp16"), dict(tensorrt="11.0.0"), dict(gpu="NVIDIA L4"), dict(compute_capability="8.9"),
               dict(onnx_sha256="cd" * 32), dict(profile=te.profile_shapes(SPEC, 16))]
    names = {_key(**c).file_name() for c in changes} | {name}
    assert len(names) == len(changes) + 1


def test_engine_file_header_round_trip_and_stale_detection():
    key = _key()
    blob = te.pack_engine(key, b"serialized-engine")
    assert te.unpack_engine(blob, key) == b"serialized-engine"
    assert te.unpack_engine(blob, _key(tensorrt="11.0.0")) is None  # built by another TensorRT
    assert te.unpack_engine(b"not an engine file", key) is None


def _fake_trt(version, has_flag=True):
    flags = types.SimpleNamespace(STRONGLY_TYPED=5) if has_flag else types.SimpleNamespace()
    created = []
    builder = types.SimpleNamespace(create_network=lambda f: created.append(f) or "network")
    return types.SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=flags), builder, created


@pytest.mark.parametrize("version, has_flag, expected", [("10.13.0", True, 1 << 5), ("11.0.0", True, 0),
                                                         ("11.4.1", False, 0)])
def test_network_is_strongly_typed_on_tensorrt_10_and_11(version, has_flag, expected):
    trt, builder, created = _fake_trt(version, has_flag)
    assert te._create_network(trt, builder) == "network"
    assert created == [expected]


def test_missing_tensorrt_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError) as info:
        te.import_tensorrt()
    msg = str(info.value)
    # the bare `tensorrt` wheel is the CUDA 13 build (driver r580+); a CUDA 12 machine needs the -cu12 one and a
    # cuda-python below 13, from NVIDIA's index
    assert "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12 'cuda-python>=12,<13'" in msg
    assert "CUDA 13 driver, r580+: pip install tensorrt cuda-python" in msg and "\n" not in msg


def _gpu_bundle(tmp_path_factory):
    """A nano bundle with fp32, fp16 and int8 models (needs torch, onnxruntime and the shared NTU samples)."""
    pytest.importorskip("torch")
    from pathlib import Path

    from sttr.calibration.calibrate_bundle import CalibrateOptions, calibrate_bundle
    from tests.calibration._models import make_bundle, make_checkpoint, real_windows

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    ws = real_windows(shared)
    if ws is None:
        pytest.skip("real NTU samples not found")
    root = tmp_path_factory.mktemp("trt")
    ckpt = make_checkpoint(root / "nano.pt", ws.windows, ws.labels)
    make_bundle(root / "bundle", ckpt, shared / "ntu60")
    calibrate_bundle(root / "bundle", CalibrateOptions(data=shared / "ntu60", samples=32, fp16=True))
    return root / "bundle", ws


@pytest.mark.gpu
@pytest.mark.parametrize("precision, tol", [("fp32", 1e-3), ("fp16", 2e-2), ("int8", 1e-1)])
def test_tensorrt_matches_onnxruntime_and_caches_the_engine(precision, tol, tmp_path_factory):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU)")
    from sttr.realtime.engines import open_engine

    bundle, ws = _gpu_bundle(tmp_path_factory)
    cache = tmp_path_factory.mktemp("cache")
    engine = open_engine(bundle, backend="tensorrt", precision=precision, cache_dir=cache, max_batch=4)
    reference = open_engine(bundle, backend="onnxruntime", precision=precision, device="cpu")
    x = ws.windows[:6]
    got, want = engine.run(x), reference.run(x)  # 6 > max_batch: runs in two chunks
    assert np.abs(got - want).max() <= tol * max(1.0, np.abs(want).max())  # logits
    one = np.concatenate([engine.run(x[i:i + 1]) for i in range(3)])  # batch 1 replays the CUDA graph
    np.testing.assert_allclose(one, got[:3], rtol=1e-3, atol=1e-3 * max(1.0, np.abs(got).max()))
    assert engine.info.details["cuda_graph"]
    files = list(cache.glob("*.engine"))
    assert len(files) == 1 and list(cache.glob("timing-*.cache"))
    again = open_engine(bundle, backend="tensorrt", precision=precision, cache_dir=cache, max_batch=4)
    assert again.info.details["engine_file"] == str(files[0])
    np.testing.assert_allclose(again.run(x), got, rtol=1e-5, atol=1e-5)


class _Recorder:
    """Stands in for TensorRT builder objects; records calls, fails on precision flags (gone in TensorRT 11)."""

    def __init__(self, log, name):
        self._log, self._name = log, name

    def __getattr__(self, attr):
        if attr in ("set_flag", "int8_calibrator"):
            raise AssertionError(f"{self._name}.{attr} used: precision must come from the ONNX graph")

        def call(*args, **kwargs):
            self._log.append((f"{self._name}.{attr}", args))
            if attr == "get_input":
                return types.SimpleNamespace(name="x")
            if attr in ("create_timing_cache", "get_timing_cache"):
                return types.SimpleNamespace(serialize=lambda: b"timing")
            if attr == "build_serialized_network":
                return b"plan"
            if attr == "parse_from_file":
                return True
            return _Recorder(self._log, attr)
        return call


def test_build_uses_profile_and_timing_cache_without_precision_flags(tmp_path):
    calls = []
    trt = types.SimpleNamespace(
        __version__="11.0.0", NetworkDefinitionCreationFlag=types.SimpleNamespace(),
        Builder=lambda logger: _Recorder(calls, "builder"), OnnxParser=lambda net, logger: _Recorder(calls, "parser"),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="ws"))
    profile = te.profile_shapes(SPEC, 4)
    plan = te._build(trt, None, tmp_path / "m.onnx", profile, tmp_path / "timing.cache", workspace=1 << 20)
    assert plan == b"plan" and (tmp_path / "timing.cache").read_bytes() == b"timing"
    assert ("create_optimization_profile.set_shape", ("x", *profile)) in calls
    assert ("builder.create_network", (0,)) in calls
