"""Export an STTR network to ONNX: input `x` (N, C, T, V, M) float32 -> `logits` (N, K) float32, batch dynamic.

Two exporters exist in torch 2.13:

* `dynamo` (`torch.onnx.export(..., dynamo=True)`, torch.export + onnxscript, opset >= 18): a clean graph, but it
  cannot translate every op (a 5-D `scaled_dot_product_attention` fails);
* `legacy` (TorchScript tracing, `dynamo=False`): works for every ST-TR variant, opset 17+.

`exporter='auto'` tries dynamo, then falls back to legacy and records which one produced the file.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["export_onnx", "Exporter", "INPUT_NAME", "OUTPUT_NAME", "MIN_OPSET"]

log = logging.getLogger(__name__)

Exporter = Literal["auto", "dynamo", "legacy"]
INPUT_NAME = "x"
OUTPUT_NAME = "logits"
MIN_OPSET = 17
_DYNAMO_MIN_OPSET = 18


def _legacy(model, example, path: Path, opset: int, dynamic_time: bool) -> None:
    import torch

    axes = {0: "N", 2: "T"} if dynamic_time else {0: "N"}
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, dynamo=False, do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "N"}})


@contextlib.contextmanager
def _quiet_torch_exporter():
    """Hide what torch's exporter says that does not concern a user exporting ST-TR: 'torchvision is not installed.
    Skipping torchvision::nms' and the like (logged at WARNING, twice per bundle), and deprecations raised inside
    torch. Errors still raise, and the bundle's parity check judges the file."""
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (UserWarning, FutureWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def _dynamo(model, example, path: Path, opset: int, dynamic_time: bool) -> None:
    import torch

    dims: dict[int, Any] = {0: torch.export.Dim("N", min=1, max=4096)}
    if dynamic_time:
        dims[2] = torch.export.Dim.DYNAMIC
    with torch.no_grad(), _quiet_torch_exporter():
        program = torch.onnx.export(model, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    opset_version=max(opset, _DYNAMO_MIN_OPSET), dynamo=True,
                                    dynamic_shapes=(dims,), verbose=False, optimize=True)
    program.save(str(path))


def export_onnx(model, path: str | Path, *, example: np.ndarray, opset: int = _DYNAMO_MIN_OPSET,
                exporter: Exporter = "auto", dynamic_time: bool = False) -> dict[str, Any]:
    """Export `model` (eval mode) to `path` and check the file with the ONNX checker.

    Args:
        model: A torch module taking (N, C, T, V, M) float32 and returning (N, K) logits.
        path: Output `.onnx` file (written in place; callers write into a temporary folder).
        example: One batch (N, C, T, V, M) float32 used for tracing; fixes C, V, M and (unless `dynamic_time`) T.
        opset: ONNX opset, >= 17 (dynamo needs >= 18 and uses max(opset, 18)).
        exporter: `auto`, `dynamo` or `legacy` (see the module docstring).
        dynamic_time: Leave T dynamic (S-TR accepts any T; T-TR needs T divisible by 4).

    Returns:
        `{'exporter', 'opset', 'dynamic_batch', 'dynamic_time', 'errors'}` for the bundle's export report.

    Raises:
        ValueError: opset below 17 or an unknown exporter.
        RuntimeError: every exporter tried failed (the message carries each error).
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if exporter not in ("auto", "dynamo", "legacy"):
        raise ValueError(f"exporter must be 'auto', 'dynamo' or 'legacy', got {exporter!r}")
    path = Path(path)
    model = model.eval()
    x = torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32))
    tried = ["dynamo", "legacy"] if exporter == "auto" else [exporter]
    if exporter == "auto" and opset < _DYNAMO_MIN_OPSET:
        tried = ["legacy"]
    errors: dict[str, str] = {}
    for name in tried:
        try:
            (_dynamo if name == "dynamo" else _legacy)(model, x, path, opset, dynamic_time)
            proto = onnx.load(str(path))
            onnx.checker.check_model(proto)
            break
        except Exception as err:  # noqa: BLE001 - each exporter fails in its own way; all are reported
            errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
            log.warning("the %s ONNX exporter failed (%s)%s", name, errors[name],
                        "; trying the next one" if name != tried[-1] else "")
    else:
        raise RuntimeError(f"ONNX export failed with every exporter tried: {errors}")
    got_opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    log.info("exported %s with the %s exporter (opset %d)", path, name, got_opset)
    return {"exporter": name, "opset": int(got_opset), "dynamic_batch": True, "dynamic_time": bool(dynamic_time),
            "errors": errors}
