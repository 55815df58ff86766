"""Feeder for generated datasets: memory-mapped (N, C, T, V, M) float32 + (names, labels) pickle + meta JSON.

Every sample's augmentation draws from its own Generator seeded by (seed, epoch, sample index), so an epoch is the
same whatever the number of DataLoader workers, the process count or a resume in the middle of training.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sttr.model.skeleton import Layout, get_layout

from .augment import Augmenter, ChannelGroups, channel_groups, resize_valid
from .pickle_files import read_pickle

__all__ = ["SplitFiles", "DatasetMeta", "read_meta", "read_labels", "SkeletonFeeder", "validation_split",
           "channel_names"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitFiles:
    """Paths of one split of a generated dataset."""

    root: Path
    split: str

    @property
    def data(self) -> Path:
        return self.root / f"{self.split}_data.npy"

    @property
    def labels(self) -> Path:
        return self.root / f"{self.split}_label.pkl"

    @property
    def meta(self) -> Path:
        return self.root / f"{self.split}_meta.json"

    def check(self) -> None:
        for path in (self.data, self.labels):
            if not path.is_file():
                raise FileNotFoundError(f"dataset split {self.split!r}: {path} does not exist ({self._found()})")

    def _found(self) -> str:
        """What the folder holds instead: its generated splits, or a hint when it is raw data."""
        if not self.root.is_dir():
            return "no such folder"
        splits = sorted(p.name[:-len("_data.npy")] for p in self.root.glob("*_data.npy"))
        if splits:
            return f"this folder has the splits {', '.join(splits)}"
        if any(self.root.glob("*.skeleton")):
            return "this folder holds raw NTU .skeleton files: make a dataset from them with `sttr gendata` first"
        return f"a generated dataset folder holds {self.split}_data.npy and {self.split}_label.pkl"


@dataclass
class DatasetMeta:
    """What `{split}_meta.json` says (every field optional in the file).

    Attributes:
        layout: Skeleton layout name or dict.
        preprocess: The preprocess spec dict applied at generation time (stored in checkpoints).
        label_names: Class names, index = label.
        subjects: Per-sample subject id (None when the dataset has none).
        cameras: Per-sample camera id.
        channels: Channel names of the C axis.
        raw: The whole JSON dict.
    """

    layout: Any = None
    preprocess: dict = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    subjects: list[int] | None = None
    cameras: list[int] | None = None
    channels: list[str] | None = None
    raw: dict = field(default_factory=dict)


def read_meta(path: str | Path) -> DatasetMeta:
    """Read a `{split}_meta.json`; a missing file gives an empty DatasetMeta."""
    path = Path(path)
    if not path.is_file():
        log.warning("no meta file %s: layout, label names and subjects unknown", path)
        return DatasetMeta()
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object of dataset fields, got {type(d).__name__}")
    pre = d.get("preprocess") or {}
    channels = d.get("channels") or pre.get("channels")
    return DatasetMeta(layout=d.get("layout") or pre.get("layout"), preprocess=pre,
                       label_names=list(d.get("label_names") or d.get("labels") or []),
                       subjects=d.get("subjects"), cameras=d.get("cameras"),
                       channels=list(channels) if channels else None, raw=d)


def read_labels(path: str | Path) -> tuple[list[str], list[int]]:
    """Read a `{split}_label.pkl`: (sample names, integer labels)."""
    path = Path(path)
    inside = sorted(p.name for p in path.glob("*_label.pkl")) if path.is_dir() else []
    hint = (f" of one split, e.g. {path / inside[0]} (here: {', '.join(inside)})" if inside else
            " of one split ({split}_label.pkl)")
    obj = read_pickle(path, "a label pickle", hint)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and len(obj[0]) == len(obj[1])):
        raise ValueError(f"{path}: expected a pickled (names, labels) pair of equal-length lists")
    return [str(n) for n in obj[0]], [int(x) for x in obj[1]]


def channel_names(meta: DatasetMeta, num_channels: int, layout: Layout | None) -> list[str]:
    """Channel names from the meta, else the layout's channels (doubled with a 'b' prefix when C = 2 x theirs)."""
    if meta.channels and len(meta.channels) == num_channels:
        return list(meta.channels)
    base = list(layout.channels) if layout is not None else ["x", "y", "z"][:num_channels]
    if num_channels == len(base):
        return base
    if num_channels == 2 * len(base):
        return base + [("b" + c if c in ("x", "y", "z") else "bone_" + c) for c in base]
    raise ValueError(f"cannot name {num_channels} channels (layout channels {base}); add 'channels' to the meta")


class SkeletonFeeder(Dataset):
    """A (subset of a) split of a generated dataset, as (data (C, T, V, M) float32 tensor, label, index).

    Args:
        root: Dataset folder.
        split: Split name (`train`, `test`, ...).
        indices: Sample indices of the split to use (None: all); `index` in the output is the split-wide index.
        augment: An `AugmentConfig` (training) or None (evaluation).
        window: Output frame count (None keeps T); evaluation resizes the valid frames to it.
        seed: Base seed of the per-sample generators.
        mmap: Memory-map the data file.
        layout: Override the meta's layout (name, dict or Layout).
    """

    def __init__(self, root: str | Path, split: str, *, indices: Sequence[int] | None = None, augment=None,
                 window: int | None = None, seed: int = 0, mmap: bool = True, layout: Any = None):
        self.files = SplitFiles(Path(root), split)
        self.files.check()
        try:
            self.data = np.load(self.files.data, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # numpy's messages do not name the file
            raise ValueError(f"{self.files.data}: not a readable .npy array, truncated or corrupt "
                             f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        if self.data.ndim != 5:
            raise ValueError(f"{self.files.data}: expected (N, C, T, V, M), got shape {self.data.shape}")
        self.names, self.labels = read_labels(self.files.labels)
        if len(self.names) != self.data.shape[0]:
            raise ValueError(f"{self.files.labels}: {len(self.names)} labels for {self.data.shape[0]} samples")
        self.meta = read_meta(self.files.meta)
        spec = layout if layout is not None else self.meta.layout
        self.layout = get_layout(spec) if spec is not None else None
        if self.layout is not None and self.layout.num_joints != self.data.shape[3]:
            raise ValueError(f"{self.files.data}: {self.data.shape[3]} joints, layout {self.layout.name!r} has "
                             f"{self.layout.num_joints}")
        self.channels = channel_names(self.meta, self.data.shape[1], self.layout)
        self.groups: ChannelGroups = channel_groups(self.channels)
        self.indices = np.arange(len(self.names)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.window = window
        self.seed = int(seed)
        self.epoch = 0
        self.augmenter = None
        if augment is not None and augment.enabled:
            if self.layout is None:
                raise ValueError(f"{self.files.meta}: augmentation needs the layout; none in the meta")
            self.augmenter = Augmenter(augment, self.layout, self.channels, window)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(C, T, V, M) of one output sample."""
        C, T, V, M = self.data.shape[1:]
        return C, self.window or T, V, M

    @property
    def num_classes(self) -> int:
        return max(len(self.meta.label_names), max(self.labels, default=-1) + 1)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentation draws (call before creating the epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of one sample in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        index = int(self.indices[i])
        sample = np.array(self.data[index], dtype=np.float32)  # copy out of the memory map
        if self.augmenter is not None:
            sample = self.augmenter(sample, self.rng(index))
        elif self.window and self.window != sample.shape[1]:
            sample = resize_valid(sample, self.window, self.groups)
        return torch.from_numpy(np.ascontiguousarray(sample)), self.labels[index], index

    def label_of(self, index: int) -> int:
        return self.labels[index]


def validation_split(labels: Sequence[int], subjects: Sequence[int] | None, *, val_subjects: Sequence[int] = (),
                     val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Carve a validation subset out of the training split, by subject (never the test split).

    Args:
        labels: Per-sample labels of the training split.
        subjects: Per-sample subject ids, or None when the dataset has none (then a class-stratified random
            `val_fraction` of the samples is held out).
        val_subjects: Explicit held-out subjects; when empty, whole subjects are drawn at random until about
            `val_fraction` of the samples are held out.
        val_fraction: Target fraction (0 gives no validation set).
        seed: Seed of the draw.

    Returns:
        (train indices, validation indices, held-out subjects).
    """
    n = len(labels)
    rng = np.random.default_rng([seed, 7919])
    if subjects is not None:
        if len(subjects) != n:
            raise ValueError(f"meta subjects: {len(subjects)} entries for {n} samples")
        subj = np.asarray(subjects)
        chosen = [int(s) for s in val_subjects]
        missing = sorted(set(chosen) - set(subj.tolist()))
        if missing:
            raise ValueError(f"data.val_subjects {missing} are not training subjects ({sorted(set(subj.tolist()))})")
        if not chosen and val_fraction > 0:
            order = rng.permutation(np.unique(subj))
            counts = {int(s): int((subj == s).sum()) for s in order}
            for s in order[:-1]:  # never hold out every subject
                if sum(counts[c] for c in chosen) >= val_fraction * n:
                    break
                chosen.append(int(s))
        val = np.isin(subj, chosen)
        return np.flatnonzero(~val), np.flatnonzero(val), sorted(chosen)
    if val_subjects:
        raise ValueError("data.val_subjects given but the dataset's meta has no per-sample subjects")
    lab = np.asarray(labels)
    val = np.zeros(n, dtype=bool)
    if val_fraction > 0:
        for c in np.unique(lab):
            members = rng.permutation(np.flatnonzero(lab == c))
            val[members[: max(1, int(round(val_fraction * len(members))))] if len(members) > 1 else []] = True
    return np.flatnonzero(~val), np.flatnonzero(val), []
