"""Accuracy of an exported bundle on a whole generated split, per precision (FP32, FP16, INT8), with ONNX Runtime.

What `sttr eval` reports for a checkpoint, for the files the live path actually runs: the calibration report only
covers the windows held out from calibration, this covers a full test split (e.g. NTU-60 xsub's 16,487 samples).
With several precisions, each one's top-1 agreement with the first is reported too.

The split's samples are cut to the bundle's window exactly as `sttr eval` cuts them for the checkpoint (the
feeder's deterministic test-time resize of the valid frames), and streamed in batches, never all in memory. A joints
+ bones split feeds a bundle that takes joints (its leading channels, matched by name).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sttr.model.bundle import InputSpec, read_bundle

from .parity import compare_logits, ort_session

__all__ = ["evaluate_bundle"]

log = logging.getLogger(__name__)


def evaluate_bundle(bundle_dir: str | Path, data: str | Path, split: str = "test", *, out_dir: str | Path,
                    precisions: Sequence[str] = ("fp32",), batch_size: int = 32, threads: int | None = None,
                    show_progress: bool = False) -> dict[str, Any]:
    """Evaluate every precision in `precisions` of a bundle on a generated split.

    Writes per precision `<split>_<precision>_scores.pkl` (sample name -> logits, before temperature),
    `_confusion.csv` / `.png` and `_metrics.json` into `out_dir`.

    Returns:
        {"num_samples", "window", "precisions": {precision: metrics and paths (+ "agreement" with the first)}}.

    Raises:
        BundleError: the bundle is tampered with, or lacks a precision (named, with the command that makes it).
        ValueError: the split's samples do not fit the bundle's input (every differing axis named).
    """
    from sttr.training.evaluate import check_fit, write_evaluation
    from sttr.training.feeder import SkeletonFeeder
    from sttr.training.logging_utils import progress

    info = read_bundle(bundle_dir)
    paths = {p: info.model_path(p) for p in dict.fromkeys(precisions)}  # every precision checked before any work
    spec = info.input
    window = spec.T or (spec.preprocess or {}).get("window") or None
    feeder = SkeletonFeeder(data, split, window=window)
    if len(feeder) == 0:
        raise ValueError(f"{data}: split {split!r} has no samples")
    first = feeder[0][0].numpy()
    joints = _leading_channels(spec, feeder.channels)
    made_as = {k: v for k, v in (spec.preprocess or {}).items() if joints is None or k not in ("bones", "channels")}
    check_fit(info.labels, made_as, feeder, str(info.root), f"{data} ({split})")
    if joints is not None and first.shape[0] != spec.C:
        log.info("the split has channels %s; the bundle takes the first %d", feeder.channels, joints)
        first = first[:joints]
    else:
        joints = None
    got = InputSpec(C=first.shape[0], T=first.shape[1], V=first.shape[2], M=first.shape[3], layout=spec.layout)
    diffs = spec.differences(got)
    bundle_layout = spec.layout if isinstance(spec.layout, str) else spec.layout.get("name")
    if feeder.layout is not None and bundle_layout and feeder.layout.name != bundle_layout:
        diffs.append(f"layout: bundle expects {bundle_layout!r}, the split is {feeder.layout.name!r}")
    if diffs:
        raise ValueError(f"split {split!r} of {data} does not fit bundle {info.root}: " + "; ".join(diffs))
    sessions = {p: ort_session(path, threads) for p, path in paths.items()}
    logits: dict[str, list[np.ndarray]] = {p: [] for p in sessions}
    labels, names = [], []
    starts = range(0, len(feeder), batch_size)
    for start in progress(starts, total=len(starts), desc=f"eval {split}", enabled=show_progress):
        items = [feeder[i] for i in range(start, min(start + batch_size, len(feeder)))]
        x = np.stack([item[0].numpy() for item in items])
        x = np.ascontiguousarray(x if joints is None else x[:, :joints], dtype=np.float32)
        for p, sess in sessions.items():
            logits[p].append(sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.float32))
        labels += [int(item[1]) for item in items]
        names += [feeder.names[int(item[2])] for item in items]
    label_names = info.labels or feeder.meta.label_names
    out: dict[str, Any] = {"num_samples": len(labels), "window": window, "bundle": str(info.root),
                           "precisions": {}}
    reference = None
    for p in sessions:
        scores = np.concatenate(logits[p])
        report = write_evaluation(out_dir, f"{split}_{p}", names, scores, labels, label_names,
                                  title=f"{Path(data).name} {split} ({p})")
        if reference is None:
            reference = (p, scores)
        else:
            report["agreement"] = {"with": reference[0], **compare_logits(reference[1], scores)}
        out["precisions"][p] = report
        log.info("%s %s: top-1 %.4f", split, p, report["top1"])
    return out


def _leading_channels(spec: InputSpec, channels: Sequence[str]) -> int | None:
    """How many leading channels of a split are exactly the bundle's input (joints from a joints + bones split, for
    a bundle that takes joints, e.g. a fused one that derives bones itself), or None when they are not."""
    want = [str(c) for c in (spec.preprocess or {}).get("channels") or _derived_channels(spec.preprocess or {})]
    have = [str(c) for c in channels]
    if len(want) == spec.C and len(have) > len(want) and have[:len(want)] == want:
        return len(want)
    return None


def _derived_channels(preprocess: dict) -> list[str]:
    """The channel names a preprocess spec implies (a fused bundle stores the form, not the names)."""
    from sttr.model.preprocess import PreprocessSpec

    try:
        return list(PreprocessSpec.from_dict({k: v for k, v in preprocess.items() if k != "window"}).channels)
    except (ValueError, TypeError, KeyError):
        return []
