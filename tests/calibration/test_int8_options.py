"""calibration.int8 options measured for the CPU path: attention MatMuls kept in float, QOperator, reduce_range."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.fixture(scope="module")
def calib(bundle_dir):
    from sttr.calibration.bundle_writer import synthetic_windows
    from sttr.calibration.single_person import zero_other_persons

    return bundle_dir / "model.p1.onnx", zero_other_persons(synthetic_windows(8, 3, 64, 25, 2, seed=2))


def test_excluding_activation_matmuls_keeps_them_float(calib, tmp_path):
    from sttr.calibration.int8 import quantize_int8

    src, x = calib
    n_act = sum(1 for n in onnx.load(str(src)).graph.node if n.op_type == "MatMul")
    full = quantize_int8(src, tmp_path / "a.onnx", x, exclude_activation_matmuls=False)
    kept = quantize_int8(src, tmp_path / "b.onnx", x)  # the default
    assert full["excluded_activation_matmuls"] == 0
    assert 0 < kept["excluded_activation_matmuls"] <= n_act
    assert kept["quantize_nodes"] < full["quantize_nodes"]


def test_qoperator_format_writes_qlinear_ops_and_no_qdq_around_convs(calib, tmp_path):
    import onnxruntime as ort

    from sttr.calibration.int8 import quantize_int8

    src, x = calib
    report = quantize_int8(src, tmp_path / "q.onnx", x, quant_format="qoperator", symmetric_activations=False,
                           reduce_range=True)
    ops = _ops(tmp_path / "q.onnx")
    float_convs = [n for n in onnx.load(str(tmp_path / "q.onnx")).graph.node
                   if n.op_type == "Conv" and n.name not in report["float_raw_concat_nodes"]]
    assert "QLinearConv" in ops and not float_convs
    assert report["quant_format"] == "qoperator" and report["reduce_range"] is True
    ref = ort.InferenceSession(str(src)).run(None, {"x": x})[0]
    out = ort.InferenceSession(str(tmp_path / "q.onnx")).run(None, {"x": x})[0]
    assert np.abs(out - ref).max() < 0.5 * np.abs(ref).max()


def test_unknown_quant_format_is_refused(calib, tmp_path):
    from sttr.calibration.int8 import quantize_int8

    src, x = calib
    with pytest.raises(ValueError, match="quant_format"):
        quantize_int8(src, tmp_path / "z.onnx", x, quant_format="qint")


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_take_a_window_count_that_is_not_a_multiple_of_the_batch(calib, tmp_path, method):
    """7 windows in batches of 4 used to leave a last batch of 3, which ONNX Runtime's histogram calibrators cannot
    stack ('inhomogeneous shape')."""
    from sttr.calibration.int8 import quantize_int8

    src, x = calib
    report = quantize_int8(src, tmp_path / f"{method}.onnx", x[:7], method=method, batch=4)
    assert report["quantize_nodes"] > 0 and "QuantizeLinear" in _ops(tmp_path / f"{method}.onnx")


def test_calibration_batches_are_all_one_size():
    from sttr.calibration.int8 import _WindowReader

    for n, batch, size in ((13, 8, 1), (12, 8, 6), (16, 8, 8), (3, 8, 3), (1, 8, 1)):
        reader = _WindowReader("x", np.zeros((n, 1, 1, 1, 1), np.float32), batch)
        sizes = []
        while (item := reader.get_next()) is not None:
            sizes.append(len(item["x"]))
        assert sizes == [size] * (n // size), (n, batch, sizes)
