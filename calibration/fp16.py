"""FP16 ONNX graph with float32 input and output, written with `onnx` alone (no onnxconverter-common).

Every float32 initializer, constant and intermediate tensor becomes float16; a Cast after the graph input and one
before the graph output keep the interface float32, so callers feed the same arrays as the FP32 model. Ops listed in
`keep_fp32` (default: Softmax, whose exponent sums are the precision-sensitive part of attention) run in float32
between a pair of casts. TensorRT builds this graph as a strongly typed network (the types are the precision);
ONNX Runtime CPU runs it too, inserting its own casts where it lacks a float16 kernel.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["convert_to_fp16", "DEFAULT_KEEP_FP32"]

log = logging.getLogger(__name__)

DEFAULT_KEEP_FP32 = ("Softmax",)
_FP16_MAX = float(np.finfo(np.float16).max)
# (op type, input index) that ONNX requires to stay float32 whatever T is.
_FLOAT32_INPUTS = {("Resize", 1), ("Resize", 2)}


def _fp16_array(a: np.ndarray) -> np.ndarray:
    return np.clip(a, -_FP16_MAX, _FP16_MAX).astype(np.float16)


def _convert_tensor(tensor) -> None:
    """In place: a float32 TensorProto becomes float16 (values clipped to the float16 range)."""
    from onnx import TensorProto, numpy_helper

    if tensor.data_type != TensorProto.FLOAT:
        return
    tensor.CopyFrom(numpy_helper.from_array(_fp16_array(numpy_helper.to_array(tensor)), tensor.name))


def _convert_nodes(graph) -> None:
    from onnx import TensorProto

    for node in graph.node:
        for attr in node.attribute:
            if attr.type == attr.TENSOR:
                _convert_tensor(attr.t)
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            elif attr.type == attr.GRAPH:
                raise NotImplementedError(f"node {node.name!r} ({node.op_type}) has a subgraph; FP16 conversion of "
                                          f"control flow is not supported")


def _keep_float32(graph, op_types: Iterable[str]) -> int:
    """Wrap the nodes of `op_types` in Cast(float32) ... Cast(float16); returns how many were wrapped."""
    from onnx import TensorProto, helper

    op_types = set(op_types)
    new_nodes, count = [], 0
    for node in graph.node:
        if node.op_type not in op_types:
            new_nodes.append(node)
            continue
        count += 1
        for i, name in enumerate(node.input):
            cast = f"{name}__to_fp32_{count}"
            new_nodes.append(helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT, name=f"{cast}_cast"))
            node.input[i] = cast
        outs = list(node.output)
        for i, name in enumerate(outs):
            node.output[i] = f"{name}__fp32"
        new_nodes.append(node)
        for name in outs:
            new_nodes.append(helper.make_node("Cast", [f"{name}__fp32"], [name], to=TensorProto.FLOAT16,
                                              name=f"{name}__to_fp16_cast"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    return count


def _float32_initializers(graph) -> set[str]:
    keep = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if (node.op_type, i) in _FLOAT32_INPUTS:
                keep.add(name)
    return keep


def _rename_uses(graph, name: str, field: str) -> str:
    """Point every node `field` ("input" or "output") that names `name` at `name__fp16`; returns the new name."""
    inner = f"{name}__fp16"
    for node in graph.node:
        names = getattr(node, field)
        for i, n in enumerate(names):
            if n == name:
                names[i] = inner
    return inner


def _cast_boundary(graph) -> None:
    """Float32 graph inputs/outputs keep their names and types; casts connect them to the float16 body."""
    from onnx import TensorProto, helper

    head, tail = [], []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = _rename_uses(graph, inp.name, "input")
            head.append(helper.make_node("Cast", [inp.name], [inner], to=TensorProto.FLOAT16, name=f"{inner}_cast"))
    for out in graph.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = _rename_uses(graph, out.name, "output")
            tail.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT, name=f"{out.name}_cast"))
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)


def convert_to_fp16(src: str | Path, dst: str | Path, *, keep_fp32: Iterable[str] = DEFAULT_KEEP_FP32) -> dict:
    """Write an FP16 copy of the FP32 ONNX model `src` to `dst` (float32 input and output).

    Returns:
        `{'keep_fp32': [...], 'wrapped_nodes': n, 'fp16_initializers': n, 'fp32_initializers': n}` for the report.
    """
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(src))
    graph = model.graph
    keep = _float32_initializers(graph)
    for init in graph.initializer:
        if init.name not in keep:
            _convert_tensor(init)
    _convert_nodes(graph)
    wrapped = _keep_float32(graph, keep_fp32)
    _cast_boundary(graph)
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    types = [init.data_type for init in model.graph.initializer]
    report = {"keep_fp32": sorted(set(keep_fp32)), "wrapped_nodes": wrapped,
              "fp16_initializers": types.count(TensorProto.FLOAT16),
              "fp32_initializers": types.count(TensorProto.FLOAT)}
    log.info("FP16 model %s: %s", dst, report)
    return report
