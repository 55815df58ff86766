"""INT8 by explicit quantization: QuantizeLinear/DequantizeLinear (Q/DQ) pairs in the ONNX graph.

Activation scales come from calibration on real skeleton windows (min-max, entropy or percentile); weights get one
scale per output channel. Activations are symmetric int8 (zero point 0) by default because TensorRT only builds
symmetric Q/DQ; the graph is what both TensorRT (strongly typed network) and ONNX Runtime run.

The FP32 graph is first pre-processed (shape inference, BatchNorm folded into the convolutions) so the folded
weights are what gets quantized.

Kept in float: the layers that read the raw coordinates concatenated with features (`concat_original`, the 4th
unit's input). One int8 scale cannot cover ReLU features and coordinates in metres at once; on the demo model that
single 1x1 residual conv was 95 % of the INT8 logit error (top-1 agreement with FP32 94.9 % -> 99.3 % without it).
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

__all__ = ["quantize_int8", "CalibrationMethodName", "METHODS", "DEFAULT_OP_TYPES"]

log = logging.getLogger(__name__)

CalibrationMethodName = Literal["minmax", "entropy", "percentile"]
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_OP_TYPES = ("Conv", "MatMul", "Gemm")
# ops that only move or relabel values: a tensor seen through them keeps its range
_SHAPE_OPS = {"Reshape", "Transpose", "Slice", "Gather", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Cast",
              "Expand"}


class _WindowReader:
    """`onnxruntime.quantization.CalibrationDataReader` over windows (N, C, T, V, M), in batches of one size.

    The batch is the largest size up to `batch` that divides N: ONNX Runtime's histogram calibrators (entropy,
    percentile) stack every batch's activations of a tensor into one array and fail on a shorter last batch
    ("inhomogeneous shape"), e.g. 13 windows from raw NTU files in batches of 8.
    """

    def __init__(self, input_name: str, windows: np.ndarray, batch: int) -> None:
        n = len(windows)
        batch = max((b for b in range(1, max(1, min(batch, n)) + 1) if n % b == 0), default=1)
        self.input_name, self.windows, self.batch, self.pos = input_name, windows, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.windows):
            return None
        x = np.ascontiguousarray(self.windows[self.pos:self.pos + self.batch], dtype=np.float32)
        self.pos += self.batch
        return {self.input_name: x}

    def rewind(self) -> None:
        self.pos = 0


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if name not in table:
        raise ValueError(f"calibration method must be one of {METHODS}, got {name!r}")
    return table[name]


def _preprocess(src: Path, dst: Path) -> None:
    """Shape inference + ORT's basic optimisations (BatchNorm folded into Conv) before quantization.

    ORT's symbolic shape inference cannot follow every reshape the exporters write; without it, ONNX's own shape
    inference is used (enough for the static-shape graphs we quantize).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False, auto_merge=True)
    except Exception as err:  # noqa: BLE001 - symbolic_shape_infer raises bare AssertionErrors
        log.info("symbolic shape inference failed (%r); using ONNX shape inference only", err)
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)


def quantize_int8(src: str | Path, dst: str | Path, windows: np.ndarray, *, method: CalibrationMethodName = "minmax",
                  percentile: float = 99.999, symmetric_activations: bool = True, per_channel: bool = True,
                  op_types: Iterable[str] = DEFAULT_OP_TYPES, batch: int = 8, reduce_range: bool = False,
                  quant_format: Literal["qdq", "qoperator"] = "qdq",
                  exclude_activation_matmuls: bool = True) -> dict[str, Any]:
    """Write the Q/DQ INT8 model of the FP32 model `src` to `dst`, calibrated on `windows`.

    Args:
        src: FP32 ONNX model (input `x` (N, C, T, V, M)).
        dst: Output path.
        windows: Calibration windows (N, C, T, V, M) float32, already normalised as the model expects.
        method: `minmax`, `entropy` or `percentile` activation ranges.
        percentile: The percentile of `percentile`.
        symmetric_activations: int8 activations with zero point 0 (needed by TensorRT); False gives ONNX Runtime's
            asymmetric uint8 activations.
        per_channel: One weight scale per output channel.
        op_types: Operator types whose inputs are quantized.
        batch: Calibration batch size.
        reduce_range: 7-bit weights (avoids int16 overflow in VNNI-less CPU kernels; costs precision).
        quant_format: `qdq` (Q/DQ pairs; what TensorRT needs, the bundle's `model.int8.onnx`) or `qoperator`
            (QLinearConv/QLinearMatMul; ONNX Runtime CPU only).
        exclude_activation_matmuls: Keep MatMuls whose two inputs are both activations (the attention products
            q k^T and attention @ v, and the softmax between them) in float. The default: on S-TR (T=64, one
            thread) the INT8 graph is 5 % faster so (ONNX Runtime's int8 softmax is slower than its float one on
            rows of 25 joints) and its logits are closer to FP32.

    Returns:
        The settings and graph statistics for the bundle's `calibration.int8` report.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 5 or not len(windows):
        raise ValueError(f"calibration windows must be a non-empty (N, C, T, V, M) array, got {windows.shape}")
    if quant_format not in ("qdq", "qoperator"):
        raise ValueError(f"quant_format must be 'qdq' or 'qoperator', got {quant_format!r}")
    calib = _method(method)
    extra = {"ActivationSymmetric": bool(symmetric_activations), "WeightSymmetric": True}
    if quant_format == "qdq":
        # Biases stay float: ONNX Runtime's default turns each Conv/Gemm bias into an INT32 initializer behind a
        # DequantizeLinear, which TensorRT's ONNX parser rejects (its DequantizeLinear takes INT8/FP8/INT4/FP4 only);
        # ONNX Runtime still fuses DQ-Conv-Q with a float bias into QLinearConv on the CPU.
        extra["QuantizeBias"] = False
    if method == "percentile":
        extra["CalibPercentile"] = float(percentile)
    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory(prefix="sttr-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _preprocess(src, pre)
        import onnx

        proto = onnx.load(str(pre), load_external_data=False)
        input_name = proto.graph.input[0].name
        raw_mixers = raw_concat_consumers(proto, op_types)
        excluded = raw_mixers + (_activation_matmuls(proto) if exclude_activation_matmuls else [])
        chatter = io.StringIO()  # the calibrators print progress to stdout
        with contextlib.redirect_stdout(chatter):
            quantize_static(str(pre), str(dst), _WindowReader(input_name, windows, batch),
                            quant_format=QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator,
                            op_types_to_quantize=list(op_types), nodes_to_exclude=excluded,
                            per_channel=per_channel, reduce_range=bool(reduce_range),
                            activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=calib, extra_options=extra)
        log.debug("quantize_static output: %s", chatter.getvalue())
    stats = qdq_statistics(dst)
    log.info("INT8 model %s: %s", dst, stats)
    return {"method": method, "percentile": percentile if method == "percentile" else None,
            "calibration_windows": int(len(windows)), "per_channel": per_channel,
            "symmetric_activations": bool(symmetric_activations), "op_types": list(op_types),
            "reduce_range": bool(reduce_range), "quant_format": quant_format,
            "excluded_activation_matmuls": len(excluded) - len(raw_mixers), "float_raw_concat_nodes": raw_mixers,
            **stats}


def raw_concat_consumers(proto, op_types: Iterable[str] = DEFAULT_OP_TYPES) -> list[str]:
    """Names of quantizable nodes that read a Concat joining the graph input (raw coordinates) with other values.

    Both sides are followed through shape-only ops: the Concat's inputs backwards to the graph input, its output
    forwards to the consumers (a linear map written as Transpose + MatMul reads it just the same).
    """
    graph = proto.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inputs = {i.name for i in graph.input}

    def from_input(name: str) -> bool:
        while name not in inputs:
            node = producer.get(name)
            if node is None or node.op_type not in _SHAPE_OPS:
                return False
            name = node.input[0]
        return True

    wanted, out = set(op_types), []
    for cat in (n for n in graph.node if n.op_type == "Concat"):
        if len(cat.input) < 2 or not any(from_input(i) for i in cat.input) or all(from_input(i) for i in cat.input):
            continue
        frontier = list(cat.output)
        while frontier:
            for node in consumers.get(frontier.pop(), []):
                if node.op_type in _SHAPE_OPS:
                    frontier.extend(node.output)
                elif node.op_type in wanted and node.name not in out:
                    out.append(node.name)
    return out


def _activation_matmuls(proto) -> list[str]:
    """Names of MatMul nodes neither of whose inputs is a weight (initializer or constant)."""
    consts = {i.name for i in proto.graph.initializer}
    consts |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in proto.graph.node if n.op_type == "MatMul" and not (set(n.input) & consts)]


def qdq_statistics(path: str | Path) -> dict[str, int]:
    """Counts of QuantizeLinear / DequantizeLinear nodes and of per-channel (vector-scale) weight DQ nodes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    ops = [n.op_type for n in graph.node]
    per_channel = sum(1 for n in graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits
                      and numpy_helper.to_array(inits[n.input[1]]).size > 1)
    return {"quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear"),
            "per_channel_weights": int(per_channel)}
