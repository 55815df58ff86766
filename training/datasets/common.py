"""Shared pieces of the small-dataset readers: the raw sample, temporal resampling, and writing a benchmark.

A raw sample is (T, M, V, C) float32 in the layout's channels. Every benchmark is written through the data
engineer's `generate_split` (same files, meta and fingerprints as NTU/Kinetics): each sample is first resampled to a
fixed T (linear interpolation over its frames), then normalised by a `PreprocessSpec` exactly as gendata does.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sttr.model.preprocess import PreprocessSpec
from sttr.model.skeleton import get_layout, layout_reference

from ..gendata.runner import SampleTask, generate_split

__all__ = ["RawSample", "resample", "make_spec", "write_benchmark", "drop_empty_frames"]

log = logging.getLogger(__name__)


@dataclass
class RawSample:
    """One sequence.

    Attributes:
        name: Sample name (stored in the label pickle and the score files).
        joints: (T, M, V, C) float32 coordinates in the layout's channels.
        label: 0-based class of the dataset (before any protocol remapping).
        subject: Subject / actor id (None when unknown).
        camera: Camera or repetition id (None when unknown).
        source: File it came from.
    """

    name: str
    joints: np.ndarray
    label: int
    subject: int | None = None
    camera: int | None = None
    source: str = ""


def drop_empty_frames(joints: np.ndarray) -> np.ndarray:
    """Remove frames (axis 0) whose values are all exactly zero."""
    keep = np.any(joints.reshape(joints.shape[0], -1) != 0, axis=1)
    return joints[keep]


def resample(joints: np.ndarray, frames: int) -> np.ndarray:
    """Linearly resample (T, M, V, C) to `frames` frames and return (C, frames, V, M) float32."""
    if joints.ndim != 4 or joints.shape[0] == 0:
        raise ValueError(f"expected a non-empty (T, M, V, C) sequence, got shape {joints.shape}")
    T = joints.shape[0]
    if T == 1:
        out = np.repeat(joints, frames, axis=0)
    else:
        pos = np.linspace(0, T - 1, frames)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, T - 1)
        w = (pos - lo)[:, None, None, None]
        out = joints[lo] * (1 - w) + joints[hi] * w
    return np.ascontiguousarray(out.transpose(3, 0, 2, 1), dtype=np.float32)


def make_spec(layout: str, window: int, *, persons: int = 1, bones: bool = False, fps: float | None = None,
              pre_normalization: str = "fixed") -> PreprocessSpec:
    """The preprocess spec of a small-dataset benchmark (samples are already T = window, so no padding)."""
    return PreprocessSpec(layout=layout, pre_normalization=pre_normalization, padding="zero",
                          bones="merge" if bones else "none", window=window, fps=fps, persons=persons)


def write_benchmark(out: str | Path, samples: Sequence[RawSample], splits: dict[str, Sequence[int]], *,
                    spec: PreprocessSpec, label_names: Sequence[str], dataset: str, benchmark: str,
                    label_map: dict[int, int] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write the splits of one benchmark as a generated dataset.

    Args:
        out: Folder of the benchmark (`{root}/{dataset}/{benchmark}`).
        samples: All samples of the dataset.
        splits: Split name -> indices into `samples`.
        spec: Normalisation (window = T of every written sample).
        label_names: Class names of the benchmark (after `label_map`).
        label_map: Dataset label -> benchmark label (protocols on a class subset); None keeps labels.
        extra: More dataset-level meta fields (protocol description, ...).

    Returns:
        The benchmark folder.
    """
    out = Path(out)
    layout = get_layout(spec.layout)
    sources: dict[str, Any] = {}
    for s in samples:  # names key the written samples (and score files): one name, one sample
        if sources.setdefault(s.name, s.source) != s.source:
            raise ValueError(f"two samples are both named {s.name!r} ({sources[s.name]} and {s.source}); sample "
                             "names must be unique")
    resampled: dict[str, np.ndarray] = {}

    def loader(task: SampleTask) -> np.ndarray:
        return resampled[task.name]

    for split, indices in splits.items():
        tasks = []
        for i in indices:
            s = samples[i]
            if s.joints.shape[2:] != (layout.num_joints, layout.num_channels):
                raise ValueError(f"sample {s.name}: joints of shape {s.joints.shape}, expected (T, M, "
                                 f"{layout.num_joints}, {layout.num_channels}) for layout {layout.name!r}")
            resampled[s.name] = resample(s.joints, spec.window)
            label = s.label if label_map is None else label_map[s.label]
            info = tuple((k, v) for k, v in (("subject", s.subject), ("camera", s.camera),
                                             ("frame_count", int(s.joints.shape[0]))) if v is not None)
            tasks.append(SampleTask(name=s.name, path=s.source, label=int(label), info=info))
        meta = {"dataset": dataset, "benchmark": benchmark, "layout": layout_reference(layout),
                "label_names": list(label_names), "resample": "linear", **(extra or {})}
        summary = generate_split(out, split, tasks, loader, spec, meta=meta, workers=1, progress=False)
        if summary.skipped:
            raise ValueError(f"{dataset}/{benchmark}/{split}: {len(summary.skipped)} samples failed, e.g. "
                             f"{summary.skipped[0]}")
        log.info("%s/%s %s: %d samples", dataset, benchmark, split, summary.num_samples)
    return out
