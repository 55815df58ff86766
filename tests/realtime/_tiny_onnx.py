"""A tiny ONNX model whose output the tests compute themselves (engine tests; no torch needed)."""
from __future__ import annotations

import numpy as np

C, T, V, M, K = 3, 16, 25, 2, 4


def tiny_onnx(path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write logits = mean over (T, V, M) of x @ W + b for x (N, C, T, V, M); returns (W (C, K), b (K,))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(C, K)).astype(np.float32), rng.normal(size=(K,)).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
             helper.make_node("MatMul", ["pooled", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C, T, V, M])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K])],
        [numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "axes"), numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return w, b
