"""The engines API as a user program meets it: what `run` takes and refuses, NaN windows, closed engines, options
and devices that do not exist, input specs of the wrong type, and a dynamic-T graph fed a T it cannot take."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sttr.model.bundle import BundleMismatchError, InputSpec, read_bundle, write_bundle_json
from sttr.realtime.engines import Engine, EngineInfo, open_engine

from ._tiny_onnx import C, K, M, T, V
from ._tiny_onnx import tiny_onnx as _tiny_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

DEMO = "realtime/demo/bundle"


def _write_bundle(root, spec: InputSpec, models: dict) -> None:
    write_bundle_json(root, {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": K},
                             "labels": list("abcd"), "temperature": 1.0, "checkpoint": None, "models": models})


@pytest.fixture
def tiny_bundle(tmp_path):
    w, b = _tiny_onnx(tmp_path / "model.onnx")
    _write_bundle(tmp_path, InputSpec(C=C, T=T, V=V, M=M, layout="ntu25", fps=30.0), {"fp32": "model.onnx"})
    return tmp_path, w, b


def _windows(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, C, T, V, M)).astype(np.float32)


class _Quantizing(Engine):
    """Stands in for an INT8 graph: any input, NaN included, gives finite logits (QuantizeLinear saturates NaN)."""

    backend = "fake"

    def __init__(self, bundle):
        super().__init__(bundle, "int8")
        self.seen: list[np.ndarray] = []

    @property
    def info(self) -> EngineInfo:
        return self._info("cpu", "model.onnx")

    def _run(self, windows):
        self.seen.append(windows.copy())
        return np.nan_to_num(windows).mean(axis=(2, 3, 4))[:, :1].repeat(K, axis=1).astype(np.float32)


def test_a_nan_window_gives_a_nan_row_and_is_never_run(tiny_bundle):
    engine = _Quantizing(read_bundle(tiny_bundle[0]))
    x = _windows(3)
    x[1, 0, 2, 3, 0] = np.nan
    x[2, 1, 0, 0, 1] = np.inf
    logits = engine.run(x)
    assert np.isfinite(logits).all(axis=1).tolist() == [True, False, False]
    assert all(np.isfinite(s).all() for s in engine.seen)  # the bad windows never reached the backend
    assert np.isnan(engine.probabilities(logits)[1:]).all()
    x[1:] = 0.0
    np.testing.assert_array_equal(engine.run(x)[0], logits[0])


def test_onnxruntime_nan_rows_leave_the_other_rows_alone(tiny_bundle):
    root, w, b = tiny_bundle
    engine = open_engine(root, "onnxruntime", threads=1)
    x = _windows(4)
    x[2] = np.nan
    logits = engine.run(x)
    assert np.isnan(logits[2]).all()
    keep = [0, 1, 3]
    np.testing.assert_allclose(logits[keep], x[keep].mean(axis=(2, 3, 4)) @ w + b, rtol=1e-5, atol=1e-5)


def test_run_converts_real_arrays_and_refuses_other_values(tiny_bundle):
    engine = open_engine(tiny_bundle[0], "onnxruntime", threads=1)
    x = _windows(2)
    ref = engine.run(x)
    for same in (x.astype(np.float64), np.asfortranarray(x), x.tolist(), np.array(x, dtype=object)):
        np.testing.assert_allclose(engine.run(same), ref, rtol=1e-6)
    for bad in (x.astype(np.complex64), x > 0, np.full(x.shape, "a")):
        with pytest.raises(TypeError, match="real numbers"):
            engine.run(bad)
    with pytest.raises(BundleMismatchError, match=r"add the batch axis: windows\[None\]"):
        engine.run(x[0])


def test_a_closed_engine_says_so(tiny_bundle):
    engine = open_engine(tiny_bundle[0], "onnxruntime", threads=1)
    with engine:
        engine.run(_windows(1))
    for call in (lambda: engine.run(_windows(1)), engine.warmup):
        with pytest.raises(RuntimeError, match="is closed"):
            call()
    engine.close()  # twice is harmless
    assert engine.info.backend == "onnxruntime"  # what ran is still told (the sessions are gone)


@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
def test_a_misspelt_option_is_an_error_naming_the_options(tiny_bundle, backend):
    with pytest.raises(TypeError, match=r"unknown engine option\(s\) \['thread'\].*threads"):
        open_engine(tiny_bundle[0], backend, thread=1)


def test_threads_and_device_are_checked(tiny_bundle):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        open_engine(tiny_bundle[0], "onnxruntime", threads=-1)
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu' or 'cuda\[:N\]', got 'gpu'"):
        open_engine(tiny_bundle[0], "onnxruntime", device="gpu")
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu' or 'cuda\[:N\]', got 'gpu'"):
        open_engine(DEMO, "torch", device="gpu")


def test_torch_on_cuda_without_a_gpu_names_the_way_out():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    with pytest.raises(RuntimeError, match="sees no CUDA GPU; use device='cpu'"):
        open_engine(DEMO, "torch", device="cuda")


def test_input_spec_must_be_an_input_spec(tiny_bundle):
    with pytest.raises(TypeError, match=r"InputSpec.from_dict"):
        open_engine(tiny_bundle[0], "onnxruntime", input_spec={"C": C, "T": T, "V": V, "M": M})


def _dynamic_t_onnx(path):
    """logits = mean of x reshaped to (N, C, T/4, 4, V*M) @ W: runs only when T is divisible by 4."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(C, K)).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("ReduceMean", ["r", "axes"], ["pooled"], keepdims=0),
             helper.make_node("MatMul", ["pooled", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C, "T", V, M])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K])],
        [numpy_helper.from_array(np.array([0, 0, -1, 4, V * M], dtype=np.int64), "shape"),
         numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "axes"), numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_a_dynamic_t_graph_fed_a_t_it_cannot_take_names_the_shape_and_t(tmp_path):
    _dynamic_t_onnx(tmp_path / "model.onnx")
    _write_bundle(tmp_path, InputSpec(C=C, T=None, V=V, M=M, layout="ntu25"), {"fp32": "model.onnx"})
    engine = open_engine(tmp_path, "onnxruntime", threads=1)
    assert engine.run(np.ones((1, C, 16, V, M), np.float32)).shape == (1, K)
    with pytest.raises(RuntimeError, match=r"windows of shape \(1, 3, 18, 25, 2\); this bundle takes windows of any T"):
        engine.run(np.ones((1, C, 18, V, M), np.float32))
    assert json.loads((tmp_path / "bundle.json").read_text())["input"]["T"] is None
