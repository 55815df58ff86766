"""Evaluation: logits of a model over a loader, top-k / per-class accuracy, confusion matrix (CSV + PNG), score files.

A score file is a pickle `{sample name: logits (K,) float32}`, the reference's format (spec §3), which
`sttr ensemble` fuses by name.
"""
from __future__ import annotations

import csv
import logging
import pickle
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sttr.model.atomic import atomic_open
from sttr.model.atomic import atomic_write_bytes as _atomic_write_bytes

from .distributed import all_gather_objects
from .logging_utils import progress
from .pickle_files import read_pickle

__all__ = ["predict", "accuracy_metrics", "save_scores", "load_scores", "save_confusion_csv", "save_confusion_png",
           "autocast", "atomic_write_bytes", "evaluate_checkpoint", "write_evaluation"]

log = logging.getLogger(__name__)


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision ("fp32": none)."""
    if precision == "fp32":
        return nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, *, precision: str = "fp32",
            show_progress: bool = False, gather: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run `model` (eval mode) over `loader` (batches of (data, label, index)); with `gather`, every rank's share is
    collected (every rank must call it); without, this process's loader is the whole set (one rank evaluating alone,
    e.g. the test at the end of a multi-process run, where a collective call would wait forever for the others).

    Returns:
        (sample indices (N,), logits (N, K) float32, labels (N,)), sorted by index.
    """
    was_training = model.training
    model.eval()
    indices, logits, labels = [], [], []
    for x, y, idx in progress(loader, total=len(loader), desc="eval", enabled=show_progress):
        with autocast(device, precision):
            out = model(x.to(device, non_blocking=True))
        logits.append(out.float().cpu().numpy())
        labels.append(np.asarray(y))
        indices.append(np.asarray(idx))
    model.train(was_training)
    local = (np.concatenate(indices) if indices else np.zeros(0, np.int64),
             np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
             np.concatenate(labels) if labels else np.zeros(0, np.int64))
    parts = all_gather_objects(local) if gather else [local]
    idx = np.concatenate([p[0] for p in parts])
    order = np.argsort(idx, kind="stable")
    keep = order[np.concatenate([[True], np.diff(idx[order]) != 0])] if len(idx) else order  # drop duplicates
    logit_parts = [p[1] for p in parts if len(p[0])]
    all_logits = np.concatenate(logit_parts) if logit_parts else np.zeros((0, 0), np.float32)
    return idx[keep], all_logits[keep], np.concatenate([p[2] for p in parts])[keep]


def accuracy_metrics(logits: np.ndarray, labels: Sequence[int], num_classes: int | None = None,
                     topk: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Top-k accuracy, per-class accuracy (recall; None for a class without samples) and the confusion matrix.

    Args:
        logits: (N, K) scores.
        labels: (N,) true classes in [0, K).

    Returns:
        {"top1": float, "top5": float, ..., "per_class": list, "confusion": (K, K) int64 array (row = true class),
        "num_samples": N}. Accuracies are fractions in [0, 1].
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"expected logits (N, K) and labels (N,), got {logits.shape} and {labels.shape}")
    K = num_classes or logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must be in [0, {K}), got range [{labels.min()}, {labels.max()}]")
    out: dict[str, Any] = {"num_samples": int(labels.size)}
    order = np.argsort(-logits, axis=1, kind="stable")
    for k in topk:
        hit = (order[:, :min(k, logits.shape[1])] == labels[:, None]).any(axis=1)
        out[f"top{k}"] = float(hit.mean()) if labels.size else float("nan")
    pred = order[:, 0] if labels.size else labels
    confusion = np.zeros((K, K), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    totals = confusion.sum(axis=1)
    out["per_class"] = [float(confusion[c, c] / totals[c]) if totals[c] else None for c in range(K)]
    out["confusion"] = confusion
    return out


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically, creating its folder (sttr.model.atomic)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path, data)


def save_scores(path: str | Path, names: Sequence[str], logits: np.ndarray) -> None:
    """Write a score file: pickle {name: logits (K,) float32} in sample order."""
    if len(names) != len(logits):
        raise ValueError(f"{len(names)} names for {len(logits)} score rows")
    scores = {str(n): np.asarray(row, dtype=np.float32) for n, row in zip(names, logits)}
    atomic_write_bytes(path, pickle.dumps(scores, protocol=4))


def load_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Read a score file (ours or the reference's): {name: logits}."""
    obj = read_pickle(path, "a score pickle {sample name: logits}", " (e.g. EVAL_DIR/test_scores.pkl)")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict {{sample name: logits}}, got {type(obj).__name__}")
    return {str(k): np.asarray(v, dtype=np.float32).reshape(-1) for k, v in obj.items()}


def save_confusion_csv(path: str | Path, confusion: np.ndarray, label_names: Sequence[str]) -> None:
    """Confusion matrix as CSV: header `true\\predicted, <names>`, one row per true class."""
    names = _names(label_names, confusion.shape[0])
    lines = [["true\\predicted", *names]] + [[names[i], *map(str, row)] for i, row in enumerate(confusion)]
    import io
    buf = io.StringIO()
    csv.writer(buf).writerows(lines)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def save_confusion_png(path: str | Path, confusion: np.ndarray, label_names: Sequence[str], title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib, Agg backend)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("the confusion-matrix PNG needs matplotlib: pip install 'sttr[train]'") from err
    K = confusion.shape[0]
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.25 * K, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
    names = _names(label_names, K)
    if K <= 60:
        ax.set_xticks(range(K), names, rotation=90, fontsize=7)
        ax.set_yticks(range(K), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    try:
        with atomic_open(path) as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)


def _names(label_names: Sequence[str], K: int) -> list[str]:
    return [str(n) for n in label_names] if len(label_names) == K else [str(i) for i in range(K)]


# how a dataset was normalised; a model sees what it was trained on only when these agree
_PREPROCESS_KEYS = ("pre_normalization", "bones", "channels", "center_joint", "rotate", "zaxis", "xaxis")


def check_fit(model_labels: Sequence[str], model_preprocess: dict[str, Any], feeder, model: str, data: str) -> None:
    """Refuse data whose classes are not the model's (an accuracy against other classes means nothing); warn when
    it was normalised otherwise than the model's training data."""
    names = list(feeder.meta.label_names or [])
    if model_labels and names and list(model_labels) != names:
        diff = next((i for i, (a, b) in enumerate(zip(model_labels, names)) if a != b), min(len(model_labels),
                                                                                          len(names)))
        where = (f"class {diff} is {model_labels[diff]!r} in the model, {names[diff]!r} in the data"
                 if diff < min(len(model_labels), len(names)) else "")
        raise ValueError(f"{data} has other classes than {model} ({len(names)} vs {len(model_labels)} classes"
                         f"{'; ' + where if where else ''}): evaluate on data of the dataset and protocol the model "
                         "was trained on")
    differ = normalisation_differences(model_preprocess, dict(feeder.meta.preprocess or {}))
    if differ:
        log.warning("%s was normalised otherwise than %s's training data (model vs data: %s): its accuracy here is "
                    "not the model's", data, model, "; ".join(differ))


def normalisation_differences(model: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """"key model-value vs data-value" for each normalisation setting both preprocess dicts give and differ in."""
    return [f"{k} {model[k]!r} vs {data[k]!r}" for k in _PREPROCESS_KEYS
            if k in model and k in data and _norm(model[k]) != _norm(data[k])]


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, split: str = "test", *, out_dir: str | Path,
                        batch_size: int = 64, device: str = "auto", window: int | None = None,
                        precision: str = "fp32", num_workers: int = 0, show_progress: bool = False) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; writes scores, confusion CSV/PNG and metrics JSON into `out_dir`.

    Returns:
        The metrics (top1, top5, per_class, num_samples) plus the paths written.
    """
    from sttr.model.checkpoint import load_checkpoint

    from .distributed import resolve_device
    from .feeder import SkeletonFeeder

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model().to(dev)
    win = window or (ckpt.meta or {}).get("window") or None
    feeder = SkeletonFeeder(data, split, window=win)
    check_fit(ckpt.labels, ckpt.preprocess, feeder, f"{checkpoint}", f"{data} ({split})")
    loader = DataLoader(feeder, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    # one process evaluates the whole split (the CLI, or rank 0 alone at the end of training): no gathering
    indices, logits, labels = predict(model, loader, dev, precision=precision, show_progress=show_progress,
                                      gather=False)
    label_names = list(ckpt.labels) or feeder.meta.label_names
    return write_evaluation(out_dir, split, [feeder.names[i] for i in indices], logits, labels, label_names,
                            title=f"{Path(data).name} {split}")


def write_evaluation(out_dir: str | Path, prefix: str, names: Sequence[str], logits: np.ndarray,
                     labels: Sequence[int], label_names: Sequence[str], *, title: str = "") -> dict[str, Any]:
    """Metrics of logits (N, K) against labels, written into `out_dir` as `<prefix>_scores.pkl` (sample name ->
    logits), `<prefix>_confusion.csv` / `.png` and `<prefix>_metrics.json`.

    Returns:
        The metrics (top1, top5, per_class, num_samples), the label names and the paths written.
    """
    import json

    label_names = list(label_names)
    metrics = accuracy_metrics(logits, labels, num_classes=logits.shape[1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scores": out / f"{prefix}_scores.pkl", "confusion_csv": out / f"{prefix}_confusion.csv",
             "confusion_png": out / f"{prefix}_confusion.png", "metrics": out / f"{prefix}_metrics.json"}
    save_scores(paths["scores"], names, logits)
    save_confusion_csv(paths["confusion_csv"], metrics["confusion"], label_names)
    save_confusion_png(paths["confusion_png"], metrics["confusion"], label_names, title=title)
    report = {k: v for k, v in metrics.items() if k != "confusion"}
    report["label_names"] = label_names
    atomic_write_bytes(paths["metrics"], json.dumps(report, indent=2).encode("utf-8"))
    report.update({k: str(v) for k, v in paths.items()})
    return report
