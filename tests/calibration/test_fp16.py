"""FP16: float16 initializers, float32 input/output, Softmax kept in float32, runs on ONNX Runtime CPU."""
from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto  # noqa: E402

from sttr.calibration.fp16 import convert_to_fp16  # noqa: E402


def test_fp16_graph_types(bundle_dir, tmp_path):
    dst = tmp_path / "m16.onnx"
    report = convert_to_fp16(bundle_dir / "model.onnx", dst)
    model = onnx.load(str(dst))
    g = model.graph
    floats = [i for i in g.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert floats and all(i.data_type == TensorProto.FLOAT16 for i in floats)
    assert g.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert g.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    producers = {o: n for n in g.node for o in n.output}
    softmaxes = [n for n in g.node if n.op_type == "Softmax"]
    assert softmaxes and report["wrapped_nodes"] == len(softmaxes)
    for node in softmaxes:
        cast = producers[node.input[0]]
        assert cast.op_type == "Cast" and cast.attribute[0].i == TensorProto.FLOAT


def test_fp16_runs_on_cpu_and_matches_fp32(bundle_dir, tmp_path, ntu_windows):
    dst = tmp_path / "m16.onnx"
    convert_to_fp16(bundle_dir / "model.onnx", dst)
    x = ntu_windows.windows
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]  # noqa
    fp32, fp16 = run(bundle_dir / "model.onnx"), run(dst)
    assert fp16.dtype == np.float32 and fp16.shape == fp32.shape
    assert np.abs(fp16 - fp32).max() < 0.02 * np.abs(fp32).max()  # logits
    assert (fp16.argmax(1) == fp32.argmax(1)).mean() >= 0.95


def test_fp16_report_in_calibrated_bundle(calibrated_dir):
    from sttr.model.bundle import read_bundle

    info = read_bundle(calibrated_dir)
    assert info.precisions == ["fp32", "fp16", "int8"]
    assert info.data["calibration"]["fp16"]["held_out"]["top1_agreement"] >= 0.95
