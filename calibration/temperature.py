"""Temperature scaling (Guo et al., 2017): one scalar T so that softmax(logits / T) is calibrated.

T is fitted on held-out logits by minimising the negative log-likelihood with a golden-section search over log T
(the NLL is convex in 1/T, so the 1-D search finds the optimum). numpy only.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

__all__ = ["softmax", "nll", "expected_calibration_error", "fit_temperature", "temperature_report"]

log = logging.getLogger(__name__)

_LOG_T_RANGE = (math.log(0.02), math.log(50.0))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of logits / temperature, float32 in and out, numerically stable."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / temperature), in nats."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    m = z.max(axis=1, keepdims=True)
    logsumexp = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(logsumexp - z[np.arange(len(z)), np.asarray(labels)]))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: mean over equal-width confidence bins of |accuracy - confidence|, weighted by bin size."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (len(logits),) or not len(logits):
        raise ValueError(f"expected logits (N, K) and labels (N,), N > 0, got {logits.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {logits.shape[1]}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    return logits, labels


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, iterations: int = 80) -> float:
    """The temperature minimising the NLL of `labels` (golden-section search over log T in [0.02, 50]).

    Raises:
        ValueError: shapes do not match or labels are out of range.
    """
    logits, labels = _check(logits, labels)
    lo, hi = _LOG_T_RANGE
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return float(math.exp((lo + hi) / 2.0))


def temperature_report(logits: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> dict[str, Any]:
    """Fit T and report NLL and ECE before (T = 1) and after, for `bundle.json`'s `calibration.temperature`."""
    logits, labels = _check(logits, labels)
    t = fit_temperature(logits, labels)
    return {
        "temperature": t,
        "n": int(len(labels)),
        "nll_before": nll(logits, labels, 1.0),
        "nll_after": nll(logits, labels, t),
        "ece_before": expected_calibration_error(softmax(logits), labels, bins),
        "ece_after": expected_calibration_error(softmax(logits, t), labels, bins),
        "ece_bins": bins,
        "accuracy": float((logits.argmax(1) == labels).mean()),
        # the search range's end: the best T lies at or beyond it (e.g. an untrained model's near-uniform scores)
        "at_search_limit": bool(min(abs(math.log(t) - end) for end in _LOG_T_RANGE) < 1e-3),
    }
