"""realtime.engines: open_engine over a bundle, the ONNX Runtime and torch backends, errors that say what to do."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from sttr.model.bundle import BundleIntegrityError, BundleMismatchError, InputSpec, read_bundle, write_bundle_json
from sttr.realtime.engines import auto_backend_order, open_engine

from ._tiny_onnx import C, K, M, T, V
from ._tiny_onnx import tiny_onnx as _tiny_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

PRE = {"layout": "ntu25", "window": T, "persons": M, "bones": "none"}


def _reference(x, w, b):
    return x.mean(axis=(2, 3, 4)) @ w + b


@pytest.fixture
def tiny_bundle(tmp_path):
    w, b = _tiny_onnx(tmp_path / "model.onnx")
    _tiny_onnx(tmp_path / "model.int8.onnx", seed=1)  # a stand-in: only its selection is tested
    spec = InputSpec(C=C, T=T, V=V, M=M, layout="ntu25", fps=30.0, preprocess=PRE)
    write_bundle_json(tmp_path, {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": K},
                                 "labels": list("abcd"), "temperature": 2.0, "checkpoint": None,
                                 "models": {"fp32": "model.onnx", "int8": "model.int8.onnx"}})
    return tmp_path, w, b


def _windows(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, C, T, V, M)).astype(np.float32)


def test_onnxruntime_engine_runs_and_reports(tiny_bundle):
    root, w, b = tiny_bundle
    engine = open_engine(root, backend="onnxruntime")
    for n in (1, 3):
        x = _windows(n)
        np.testing.assert_allclose(engine.run(x), _reference(x, w, b), rtol=1e-5, atol=1e-5)
    info = engine.info
    assert (info.backend, info.precision, info.device, info.model_file) == ("onnxruntime", "fp32", "cpu", "model.onnx")
    assert info.labels == tuple("abcd") and info.input.T == T and info.details["intra_op_threads"] >= 1


def test_probabilities_apply_the_bundle_temperature(tiny_bundle):
    root, _, _ = tiny_bundle
    engine = open_engine(root, backend="onnxruntime")
    logits = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum()
    np.testing.assert_allclose(engine.probabilities(logits), expected, rtol=1e-6)


def test_precision_selects_the_model_file(tiny_bundle):
    root, w, b = tiny_bundle
    engine = open_engine(root, backend="onnxruntime", precision="int8")
    x = _windows(2)
    assert engine.info.model_file == "model.int8.onnx"
    assert not np.allclose(engine.run(x), _reference(x, w, b))
    # INT8 also opens batch-1 sessions by default (faster single windows); FP32 does not (slower there)
    assert engine.info.details["batch1_session"] is True
    np.testing.assert_allclose(engine.run(x[:1]), engine.run(x)[:1], rtol=1e-6, atol=1e-6)
    assert open_engine(root, backend="onnxruntime").info.details["batch1_session"] is False
    with pytest.raises(BundleMismatchError, match=r"no fp16 model .*\['fp32', 'int8'\]"):
        open_engine(root, backend="onnxruntime", precision="fp16")


def test_an_int8_graph_the_uint8_rewrite_does_not_fit_is_run_as_it_is(tiny_bundle, monkeypatch, caplog):
    """The CPU engine gives INT8 graphs uint8 activations at load; when the rewritten graph does not load it warns
    and runs the bundle's file unchanged instead of failing."""
    from sttr.realtime.engines import onnxruntime_engine

    root, _, _ = tiny_bundle
    monkeypatch.setattr(onnxruntime_engine, "uint8_activation_model", lambda path: (b"not an onnx model", 4))
    with caplog.at_level("WARNING"):
        engine = open_engine(root, backend="onnxruntime", precision="int8", device="cpu")
    assert "did not load" in caplog.text and "running the file as it is" in caplog.text
    assert caplog.text.count("did not load") == 1  # the batch-1 session does not try the rewrite again
    w, b = _tiny_onnx(root / "seed1.onnx", seed=1)  # the stand-in int8 file's own weights
    x = _windows(2)
    np.testing.assert_allclose(engine.run(x), _reference(x, w, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(engine.run(x[:1]), _reference(x[:1], w, b), rtol=1e-5, atol=1e-5)


def test_auto_picks_onnxruntime_on_a_cpu_box(tiny_bundle):
    root, _, _ = tiny_bundle
    assert auto_backend_order(read_bundle(root), "fp32")[0] in ("onnxruntime", "tensorrt")
    assert open_engine(root).info.backend in ("onnxruntime", "tensorrt")


def test_window_shape_mismatch_names_the_axis(tiny_bundle):
    root, _, _ = tiny_bundle
    engine = open_engine(root, backend="onnxruntime")
    with pytest.raises(BundleMismatchError, match=r"T=16.*got shape \(1, 3, 32, 25, 2\)"):
        engine.run(np.zeros((1, C, 32, V, M), dtype=np.float32))
    with pytest.raises(BundleMismatchError, match=r"\(N, C, T, V, M\)"):
        engine.run(np.zeros((C, T, V, M), dtype=np.float32))


def test_input_spec_mismatch_is_refused_naming_the_field(tiny_bundle):
    root, _, _ = tiny_bundle
    spec = InputSpec(C=C, T=T, V=V, M=M, layout="kinect20", fps=30.0)
    with pytest.raises(BundleMismatchError, match="layout: bundle expects 'ntu25', input has 'kinect20'"):
        open_engine(root, backend="onnxruntime", input_spec=spec)


def test_tampered_bundle_is_refused(tiny_bundle):
    root, _, _ = tiny_bundle
    with open(root / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleIntegrityError, match=r"model\.onnx changed"):
        open_engine(root, backend="onnxruntime")


def test_tensorrt_missing_names_the_install_command(tiny_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError, match=r"pip install tensorrt cuda-python"):
        open_engine(tiny_bundle[0], backend="tensorrt")


def test_onnxruntime_missing_names_the_install_command(tiny_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'sttr\[live\]'"):
        open_engine(tiny_bundle[0], backend="onnxruntime")


def test_torch_backend_needs_the_checkpoint(tiny_bundle):
    with pytest.raises(BundleMismatchError, match="no checkpoint"):
        open_engine(tiny_bundle[0], backend="torch")


def test_unknown_backend_and_precision(tiny_bundle):
    with pytest.raises(ValueError, match="backend must be"):
        open_engine(tiny_bundle[0], backend="tflite")
    with pytest.raises(ValueError, match="precision must be"):
        open_engine(tiny_bundle[0], precision="int4")


@pytest.mark.slow
def test_torch_engine_matches_onnxruntime_on_an_exported_bundle(tmp_path):
    torch = pytest.importorskip("torch")
    from sttr.calibration.export_onnx import export_onnx
    from sttr.model.checkpoint import save_checkpoint
    from sttr.model.config import preset
    from sttr.model.sttr import STTR

    torch.manual_seed(0)
    model = STTR(preset("nano", num_classes=K)).eval()
    save_checkpoint(tmp_path / "model.pt", model, preprocess=PRE)
    x = _windows(2) * 0.3
    export_onnx(model, tmp_path / "model.onnx", example=x, exporter="legacy", opset=17)
    spec = InputSpec(C=C, T=T, V=V, M=M, layout="ntu25", fps=30.0, preprocess=PRE)
    write_bundle_json(tmp_path, {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": K},
                                 "labels": list("abcd"), "temperature": 1.0, "checkpoint": "model.pt",
                                 "models": {"fp32": "model.onnx"}})
    via_torch = open_engine(tmp_path, backend="torch")
    via_ort = open_engine(tmp_path, backend="onnxruntime")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(via_torch.run(x), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(via_ort.run(x), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    assert via_torch.info.backend == "torch" and via_torch.info.model_file == "model.pt"
    with pytest.raises(ValueError, match="int8"):
        open_engine(tmp_path, backend="torch", precision="int8")
