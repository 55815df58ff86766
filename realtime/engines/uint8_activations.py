"""A bundle's symmetric INT8 graph as ONNX Runtime's x86 CPU kernels want it: activations as uint8.

`model.int8.onnx` quantizes activations to int8 with zero point 0, because TensorRT builds only symmetric Q/DQ.
ONNX Runtime's x86 integer kernels take uint8 activations, so it converts int8 Q/DQ pairs to uint8 itself, but
only pairs whose QuantizeLinear feeds a single DequantizeLinear. A tensor read by two layers (a conv input that
is also a residual) keeps int8, and the convs reading it then run in float: on S-TR that was five convolutions,
~8 % of the INT8 graph's time.

The rewrite here is exact: int8 q with zero point z equals uint8 q + 128 with zero point z + 128, for every Q and
DQ alike, so the same numbers flow and the graph keeps its meaning (weights stay int8). Applied when the graph is
loaded for ONNX Runtime's CPU provider; the bundle's file is not touched.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["uint8_activation_model"]

log = logging.getLogger(__name__)


def uint8_activation_model(path: str | Path) -> tuple[bytes, int] | None:
    """The serialized model of `path` with every int8 activation Q/DQ made uint8, and how many nodes changed.

    None when there is nothing to change (no int8 activation zero points) or the `onnx` package is missing (the
    caller then loads the file as it is).
    """
    try:
        import onnx
        from onnx import TensorProto, numpy_helper
    except ImportError:
        log.info("onnx is not installed: %s is run with ONNX Runtime's own int8 handling", Path(path).name)
        return None
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = set(initializers) | {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    shifted: dict[str, str] = {}  # int8 zero point -> its uint8 copy
    changed = 0
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            continue  # a weight: int8 is what the kernels want
        zero_point = initializers.get(node.input[2])
        if zero_point is None or zero_point.data_type != TensorProto.INT8:
            continue
        if zero_point.name not in shifted:
            name = f"{zero_point.name}__uint8"
            values = numpy_helper.to_array(zero_point).astype(np.int16) + 128
            graph.initializer.append(numpy_helper.from_array(values.astype(np.uint8), name))
            shifted[zero_point.name] = name
        node.input[2] = shifted[zero_point.name]
        changed += 1
    if not changed:
        return None
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name in shifted and init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    # recorded int8 activation types would now be wrong; ONNX Runtime infers them again
    kept = [vi for vi in graph.value_info if vi.type.tensor_type.elem_type != TensorProto.INT8]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model.SerializeToString(), changed
