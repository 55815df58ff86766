"""The INT8 graph given to ONNX Runtime's CPU provider: int8 activation Q/DQ made uint8, exactly."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sttr.realtime.engines.uint8_activations import uint8_activation_model  # noqa: E402


def _qdq_residual_model(path, zero_point_type=TensorProto.INT8, weights_as_constant_node=False):
    """x -> Q -> DQ, read by a conv AND by the residual add (the case ONNX Runtime leaves int8): y = conv(x) + x."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(8, 8, 1, 1)).astype(np.int8)
    dtype = np.int8 if zero_point_type == TensorProto.INT8 else np.uint8
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(3 if dtype == np.int8 else 131, dtype), "zp"),
             numpy_helper.from_array(w, "w_q"), numpy_helper.from_array(np.full(8, 0.01, np.float32), "w_s"),
             numpy_helper.from_array(np.zeros(8, np.int8), "w_zp"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s2"),
             numpy_helper.from_array(np.array(-2 if dtype == np.int8 else 126, dtype), "zp2")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s2", "zp2"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s2", "zp2"], ["cd"]),
             helper.make_node("Add", ["cd", "xd"], ["y"])]
    if weights_as_constant_node:  # as some exporters store them
        inits = [i for i in inits if i.name != "w_q"]
        nodes.insert(0, helper.make_node("Constant", [], ["w_q"], value=numpy_helper.from_array(w, "w_q")))
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 5])], inits)
    graph.value_info.append(helper.make_tensor_value_info("xq", zero_point_type, [1, 8, 6, 5]))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(model, x, level, optimized=None):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    if optimized:
        opts.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_rewrite_is_exact_and_leaves_weights_int8(tmp_path):
    path = tmp_path / "m.onnx"
    _qdq_residual_model(path)
    model, changed = uint8_activation_model(path)
    assert changed == 4  # the activation Q/DQ nodes, not the weight DQ
    proto = onnx.load_from_string(model)
    inits = {i.name: i for i in proto.graph.initializer}
    assert inits["w_q"].data_type == TensorProto.INT8 and inits["w_zp"].data_type == TensorProto.INT8
    points = {n.input[2] for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")}
    assert all(inits[p].data_type == TensorProto.UINT8 for p in points - {"w_zp"})
    assert numpy_helper.to_array(inits["zp__uint8"]) == 131 and numpy_helper.to_array(inits["zp2__uint8"]) == 126
    assert "zp" not in inits and not any(vi.name == "xq" for vi in proto.graph.value_info)  # stale int8 type gone
    x = np.random.default_rng(1).normal(size=(1, 8, 6, 5)).astype(np.float32) * 4  # some values saturate
    none = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_array_equal(_run(model, x, none), _run(str(path), x, none))  # the graph's meaning


def test_a_conv_whose_input_is_also_a_residual_becomes_an_integer_conv(tmp_path):
    """ONNX Runtime 1.32 leaves this conv in float on the int8 graph (its input has two readers); after the rewrite
    it runs as QLinearConv, within one output quantum of the float conv."""
    path = tmp_path / "m.onnx"
    _qdq_residual_model(path)
    model, _ = uint8_activation_model(path)
    x = np.random.default_rng(2).normal(size=(1, 8, 6, 5)).astype(np.float32)
    full = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    before, after = _run(str(path), x, full, tmp_path / "a.onnx"), _run(model, x, full, tmp_path / "b.onnx")
    ops = {name: [n.op_type for n in onnx.load(str(tmp_path / name)).graph.node] for name in ("a.onnx", "b.onnx")}
    assert "QLinearConv" in ops["b.onnx"] and "Conv" not in ops["b.onnx"]
    assert np.abs(after - before).max() <= 0.1 + 1e-6  # s2: one step of the conv output's quantization


def test_nothing_to_rewrite_gives_none(tmp_path):
    path = tmp_path / "m.onnx"
    _qdq_residual_model(path, TensorProto.UINT8)
    assert uint8_activation_model(path) is None


def test_weights_held_in_constant_nodes_stay_int8(tmp_path):
    path = tmp_path / "m.onnx"
    _qdq_residual_model(path, weights_as_constant_node=True)
    model, changed = uint8_activation_model(path)
    assert changed == 4
    proto = onnx.load_from_string(model)
    weight_dq = next(n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "w_q")
    assert weight_dq.input[2] == "w_zp"
    x = np.random.default_rng(3).normal(size=(1, 8, 6, 5)).astype(np.float32)
    none = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_array_equal(_run(model, x, none), _run(str(path), x, none))
