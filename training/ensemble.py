"""Score fusion of several streams (S-TR + T-TR, joints + bones, ...), by sample NAME (spec §5 paired by position).

fused[name] = sum_i w_i * f(scores_i[name]) with f the identity (raw logits, the reference) or a softmax.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .evaluate import accuracy_metrics

__all__ = ["fuse_scores", "labels_by_name", "ensemble_metrics"]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def fuse_scores(scores: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float] | None = None, *,
                normalize: str = "none", sources: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Weighted sum of score dicts, matched by sample name.

    Args:
        scores: Score dicts {name: logits (K,)}.
        weights: One weight per dict (default all 1).
        normalize: "none" (raw logits) or "softmax" (per sample, per stream, before weighting).
        sources: Names of the score files, for error messages.

    Raises:
        ValueError: if the dicts do not hold the same sample names or the same number of classes.
    """
    if not scores:
        raise ValueError("no score files to fuse")
    sources = list(sources or [f"scores[{i}]" for i in range(len(scores))])
    weights = [1.0] * len(scores) if weights is None else [float(w) for w in weights]
    if len(weights) != len(scores):
        raise ValueError(f"{len(weights)} weights for {len(scores)} score files")
    if not all(np.isfinite(w) and w >= 0 for w in weights) or not any(weights):  # < 0 would invert a stream
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights}")
    if normalize not in ("none", "softmax"):
        raise ValueError(f"normalize must be 'none' or 'softmax', got {normalize!r}")
    names = list(scores[0])
    reference = set(names)
    for src, s in zip(sources[1:], scores[1:]):
        missing, extra = sorted(reference - set(s)), sorted(set(s) - reference)
        if missing or extra:
            raise ValueError(f"{src} and {sources[0]} hold different samples: {len(missing)} missing "
                             f"(e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})")
    f = _softmax if normalize == "softmax" else (lambda v: v)
    fused = {}
    for name in names:
        rows = [np.asarray(s[name], dtype=np.float64).reshape(-1) for s in scores]
        sizes = {len(r) for r in rows}
        if len(sizes) != 1:
            raise ValueError(f"sample {name!r}: the score files have different numbers of classes {sorted(sizes)}")
        bad = [src for src, r in zip(sources, rows) if not np.isfinite(r).all()]
        if bad:  # argmax of NaN is class 0: the accuracy would be that class's share
            raise ValueError(f"sample {name!r}: {bad[0]} holds non-finite scores (NaN/inf); a diverged model?")
        fused[name] = sum(w * f(r) for w, r in zip(weights, rows)).astype(np.float32)
    return fused


def labels_by_name(names: Sequence[str], labels: Sequence[int]) -> dict[str, int]:
    """{name: label} from a label pickle's (names, labels)."""
    if len(names) != len(labels):
        raise ValueError(f"label file: {len(names)} names for {len(labels)} labels")
    return {str(n): int(y) for n, y in zip(names, labels)}


def ensemble_metrics(fused: Mapping[str, np.ndarray], labels: Mapping[str, int]) -> dict:
    """Top-1/top-5 and per-class accuracy of fused scores against labels matched by name.

    Raises:
        ValueError: if a scored sample has no label, or a labelled sample has no score.
    """
    missing, unscored = sorted(set(fused) - set(labels)), sorted(set(labels) - set(fused))
    if missing or unscored:
        raise ValueError(f"scores and labels hold different samples: {len(missing)} scored without a label "
                         f"(e.g. {missing[:3]}), {len(unscored)} labelled without a score (e.g. {unscored[:3]})")
    names = sorted(fused)
    logits = np.stack([fused[n] for n in names])
    return accuracy_metrics(logits, [labels[n] for n in names], num_classes=logits.shape[1])
