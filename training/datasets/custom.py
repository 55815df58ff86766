"""Custom datasets: a folder of per-sample `.npy` arrays plus a CSV index, in any declared skeleton layout.

Format (documented for users):

    my_dataset/
      samples.csv          # header: file,label[,subject][,camera]
      clip_0001.npy        # float array (T, V, C) for one person or (T, M, V, C); C = the layout's channels
      ...
      labels.txt           # optional: one class name per line (line i = class i)

`label` is an integer class or a class name (names are mapped through labels.txt, else sorted alphabetically).
Frames where every value is 0 are dropped; each sample is resampled to `window` frames and normalised with the same
`PreprocessSpec` machinery as NTU (so the trainer, the checkpoints and the live path see one format).

Protocols: train/test by subject lists, by camera lists, or by explicit fold files (text files listing `file`
entries, one per line). Unlisted samples go to test when only the train side is given, and vice versa.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from sttr.model.skeleton import get_layout, layout_reference

from .common import RawSample, drop_empty_frames, make_spec, write_benchmark

__all__ = ["CustomProtocol", "load_custom", "custom_splits", "generate_custom"]


@dataclass
class CustomProtocol:
    """How to split a custom dataset (give exactly one kind).

    Attributes:
        train_subjects / test_subjects: Subject ids (one side may be empty: then it is "all the others").
        train_cameras / test_cameras: Camera ids, likewise.
        train_list / test_list: Fold files listing sample `file` names, likewise.
    """

    train_subjects: list[int] = field(default_factory=list)
    test_subjects: list[int] = field(default_factory=list)
    train_cameras: list[int] = field(default_factory=list)
    test_cameras: list[int] = field(default_factory=list)
    train_list: str | None = None
    test_list: str | None = None


def _read_index(folder: Path) -> list[dict[str, str]]:
    index = folder / "samples.csv"
    if not index.is_file():
        raise FileNotFoundError(f"custom dataset: {index} not found (expected a CSV with header file,label,...)")
    with open(index, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        got = list(rows[0]) if rows else "no rows"
        raise ValueError(f"{index}: expected a header with at least the columns file,label (got {got})")
    return rows


def _class_names(folder: Path, raw_labels: list[str]) -> list[str]:
    names_file = folder / "labels.txt"
    if names_file.is_file():
        return [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if all(label.strip().lstrip("-").isdigit() for label in raw_labels):
        return [str(i) for i in range(max(int(x) for x in raw_labels) + 1)]
    return sorted(set(raw_labels))


def _label(raw: str, names: list[str], where: str) -> int:
    raw = raw.strip()
    if raw in names:
        return names.index(raw)
    if raw.lstrip("-").isdigit() and 0 <= int(raw) < len(names):
        return int(raw)
    raise ValueError(f"{where}: label {raw!r} is neither a class name nor an index in [0, {len(names)})")


def _optional_int(row: dict[str, str], key: str) -> int | None:
    value = (row.get(key) or "").strip()
    return int(value) if value else None


def load_custom(folder: str | Path, layout: str) -> tuple[list[RawSample], list[str]]:
    """Read a custom dataset -> (samples (T, M, V, C) with M the largest person count, class names)."""
    folder, lay = Path(folder), get_layout(layout)
    rows = _read_index(folder)
    names = _class_names(folder, [r["label"] for r in rows])
    samples = []
    for n, row in enumerate(rows, 2):
        where = f"{folder / 'samples.csv'}:{n}"
        path = folder / row["file"].strip()
        if not path.is_file():
            raise FileNotFoundError(f"{where}: sample file {path} not found")
        arr = _read_array(path)
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4 or arr.shape[2:] != (lay.num_joints, lay.num_channels):
            raise ValueError(f"{path}: shape {arr.shape}, expected (T, V, C) or (T, M, V, C) with V = "
                             f"{lay.num_joints}, C = {lay.num_channels} for layout {lay.name!r}")
        arr = drop_empty_frames(arr)
        if arr.shape[0] == 0:
            raise ValueError(f"{path}: every frame is zero")
        samples.append(RawSample(name=Path(row["file"]).stem, joints=arr, label=_label(row["label"], names, where),
                                 subject=_optional_int(row, "subject"), camera=_optional_int(row, "camera"),
                                 source=str(path)))
    persons = max(s.joints.shape[1] for s in samples)
    for s in samples:
        if s.joints.shape[1] < persons:
            pad = np.zeros((s.joints.shape[0], persons - s.joints.shape[1], *s.joints.shape[2:]), np.float32)
            s.joints = np.concatenate([s.joints, pad], axis=1)
    return samples, names


def _read_array(path: Path) -> np.ndarray:
    """One sample's float32 array, or a ValueError naming the file (np.load's own messages do not)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # pickled objects, another format, a cut-off file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        what = "truncated .npy file" if "Failed to read all data" in first else "not a numeric .npy array"
        raise ValueError(f"{path}: {what} ({first})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: expected a numeric array, got {getattr(arr, 'dtype', type(arr).__name__)}")
    return arr.astype(np.float32)


def _side(samples: Sequence[RawSample], values: Sequence, key, name: str) -> set[int]:
    wanted = set(values)
    present = {key(s) for s in samples}
    absent = sorted(wanted - present)
    if absent:  # a typo would otherwise move every sample to the other side
        raise ValueError(f"custom protocol: no sample has {name[:-1]} {', '.join(map(str, absent))} (samples.csv has "
                         f"{name} {', '.join(map(str, sorted(present)))})")
    return {i for i, s in enumerate(samples) if key(s) in wanted}


def custom_splits(samples: Sequence[RawSample], protocol: CustomProtocol,
                  folder: str | Path = ".") -> dict[str, list[int]]:
    """split -> indices for a protocol; raises ValueError when none or several kinds are given, or a split is empty."""
    kinds = [("subjects", protocol.train_subjects, protocol.test_subjects, lambda s: s.subject),
             ("cameras", protocol.train_cameras, protocol.test_cameras, lambda s: s.camera)]
    chosen = [k for k in kinds if k[1] or k[2]]
    lists = protocol.train_list or protocol.test_list
    if len(chosen) + bool(lists) != 1:
        raise ValueError("custom protocol: give exactly one of subject lists, camera lists or fold files")
    everything = set(range(len(samples)))
    if lists:
        def read(p):
            path = Path(folder) / p
            entries = {Path(x.strip()).stem for x in path.read_text(encoding="utf-8").splitlines() if x.strip()}
            unknown = entries - {s.name for s in samples}
            if unknown:
                raise ValueError(f"{path}: unknown samples {sorted(unknown)[:5]}")
            return {i for i, s in enumerate(samples) if s.name in entries}
        train = read(protocol.train_list) if protocol.train_list else None
        test = read(protocol.test_list) if protocol.test_list else None
    else:
        name, tr, te, key = chosen[0]
        if any(key(s) is None for s in samples):
            raise ValueError(f"custom protocol by {name}: samples.csv lacks a {name[:-1]} for some samples")
        train = _side(samples, tr, key, name) if tr else None
        test = _side(samples, te, key, name) if te else None
    train = train if train is not None else everything - test
    test = test if test is not None else everything - train
    if train & test:
        raise ValueError(f"custom protocol: {len(train & test)} samples are in both train and test")
    if not train or not test:
        raise ValueError(f"custom protocol: empty split (train {len(train)}, test {len(test)})")
    return {"train": sorted(train), "test": sorted(test)}


def generate_custom(folder: str | Path, out: str | Path, layout: str, protocol: CustomProtocol, *,
                    window: int = 64, bones: bool = False, pre_normalization: str = "fixed",
                    fps: float | None = None, name: str = "custom") -> Path:
    """Read, split and write a custom dataset as `{out}/{split}_*`; returns `out`."""
    samples, classes = load_custom(folder, layout)
    splits = custom_splits(samples, protocol, folder)
    spec = make_spec(layout_reference(layout), window, persons=samples[0].joints.shape[1], bones=bones, fps=fps,
                     pre_normalization=pre_normalization)
    return write_benchmark(out, samples, splits, spec=spec, label_names=classes, dataset=name, benchmark=name,
                           extra={"protocol": {k: v for k, v in vars(protocol).items() if v}})
