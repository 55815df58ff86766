"""Compare logits of two implementations (PyTorch vs ONNX, FP32 vs INT8/FP16) on the same windows."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["compare_logits", "onnx_logits", "torch_logits", "ort_session", "float32_noise"]

log = logging.getLogger(__name__)


def compare_logits(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Agreement report of `candidate` logits against `reference` logits (both (N, K)).

    Returns:
        `n`, `max_abs_logit_diff`, `mean_abs_logit_diff`, `top1_agreement` (fraction of windows whose arg-max is the
        same), `top1_disagreements`, and with labels (>= 0) `accuracy_reference`, `accuracy_candidate`,
        `accuracy_change` (candidate - reference).
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"expected two (N, K) logit arrays of the same shape, got {reference.shape} and "
                         f"{candidate.shape}")
    diff = np.abs(reference - candidate)
    same = reference.argmax(1) == candidate.argmax(1)
    out: dict[str, Any] = {
        "n": int(len(reference)),
        "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": float(same.mean()) if len(same) else 1.0,
        "top1_disagreements": int((~same).sum()),
    }
    if labels is not None and len(labels) and (np.asarray(labels) >= 0).all():
        labels = np.asarray(labels)
        acc_ref = float((reference.argmax(1) == labels).mean())
        acc_new = float((candidate.argmax(1) == labels).mean())
        out.update(accuracy_reference=acc_ref, accuracy_candidate=acc_new, accuracy_change=acc_new - acc_ref)
    return out


def ort_session(path: str | Path, threads: int | None = None):
    """A CPU ONNX Runtime session with full graph optimisation."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_logits(path_or_session, windows: np.ndarray, batch: int = 16) -> np.ndarray:
    """Run an ONNX model (file or session) on windows (N, C, T, V, M) in batches -> (N, K) float32."""
    sess = ort_session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: np.ascontiguousarray(windows[i:i + batch], dtype=np.float32)})[0]
           for i in range(0, len(windows), batch)]
    return np.concatenate(out).astype(np.float32)


def torch_logits(model, windows: np.ndarray, batch: int = 16, dtype: type = np.float32) -> np.ndarray:
    """Run a torch module in eval mode on windows (N, C, T, V, M) in batches -> (N, K) logits of `dtype` (float64
    for a model converted with `.double()`)."""
    import torch

    model = model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[i:i + batch], dtype=dtype))
            out.append(model(x).numpy().astype(dtype, copy=False))
    return np.concatenate(out)


def float32_noise(model, windows: np.ndarray, reference: np.ndarray) -> float | None:
    """max |float32 logits - float64 logits| of a torch `model` on `windows`: how far PyTorch itself is from exact.

    A model whose logits are huge (untrained, or windows far from its training data) can be ill-conditioned enough
    that float32 rounding alone moves them by more than a fixed tolerance; an export is then as good as PyTorch when
    it differs by no more than PyTorch's own error. `reference` is the model's float32 logits. None when the model
    cannot run in float64.
    """
    import copy

    try:
        exact = torch_logits(copy.deepcopy(model).double(), windows, dtype=np.float64)
    except (RuntimeError, TypeError) as err:  # a module that insists on float32
        log.debug("float64 copy of the model did not run: %s", err)
        return None
    return float(np.abs(exact - np.asarray(reference, dtype=np.float64)).max())
