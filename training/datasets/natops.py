"""NATOPS (UEA multivariate archive): `natops8` layout (8 arm/hand markers), 6 classes, fixed 180/180 split.

`.ts` files (sktime/aeon format, read as UTF-8: the header holds a U+FFFD): after `@data`, one line per sample with 24
comma-separated dimensions of 51 values separated by `:` and the class label (`1.0`..`6.0`) last. Dimension
3 l + a is axis a (x, y, z) of location l in the order of the layout. No subject ids: the trainer's validation subset
is a class-stratified random part of the training split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import RawSample, make_spec, write_benchmark

__all__ = ["CLASSES", "read_ts", "load_natops", "generate_natops"]

CLASSES = ("I have command", "All clear", "Not clear", "Spread wings", "Fold wings", "Lock wings")
_DIMS, _V = 24, 8


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Parse an equal-length multivariate `.ts` file -> ([(dims, length) arrays], [class label strings])."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NATOPS: {path} not found")
    series, labels, in_data = [], [], False
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        try:
            arr = np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float32)
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: bad value: {err}") from None
        if arr.ndim != 2:
            raise ValueError(f"{path}:{lineno}: dimensions of unequal length")
        series.append(arr)
        labels.append(label.strip())
    if not series:
        raise ValueError(f"{path}: no samples after @data")
    return series, labels


def load_natops(root: str | Path, split: str) -> list[RawSample]:
    """`NATOPS_{TRAIN,TEST}.ts` -> samples (T=51, 1, 8, 3), named `{split}_{i:03d}`."""
    path = Path(root) / f"NATOPS_{split.upper()}.ts"
    series, labels = read_ts(path)
    samples = []
    for i, (arr, label) in enumerate(zip(series, labels)):
        if arr.shape[0] != _DIMS:
            raise ValueError(f"{path}: sample {i}: {arr.shape[0]} dimensions, expected {_DIMS}")
        joints = arr.reshape(_V, 3, -1).transpose(2, 0, 1)[:, None]  # (T, 1, V, C)
        samples.append(RawSample(name=f"{split.lower()}_{i:03d}", joints=np.ascontiguousarray(joints),
                                 label=int(float(label)) - 1, source=str(path)))
    return samples


def generate_natops(root: str | Path, out: str | Path, *, window: int = 48, bones: bool = False) -> dict[str, Path]:
    """Write `{out}/uea/{train,test}_*` (the fixed UEA split); returns {"uea": folder}."""
    train, test = load_natops(root, "train"), load_natops(root, "test")
    samples = train + test
    splits = {"train": list(range(len(train))), "test": list(range(len(train), len(samples)))}
    # No skeleton tree and no rotation joints: centre on the layout's centre joint only.
    spec = make_spec("natops8", window, bones=bones, fps=None)
    folder = write_benchmark(Path(out) / "uea", samples, splits, spec=spec, label_names=CLASSES, dataset="natops",
                             benchmark="uea", extra={"protocol": "fixed UEA split, 180 train / 180 test"})
    return {"uea": folder}
