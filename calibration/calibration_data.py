"""Real skeleton windows for calibration and parity checks, in the model's input layout (N, C, T, V, M) float32.

Sources (`load_windows(source, ...)`):

* a folder of NTU `.skeleton` files (or one file): each clip is cut into windows of T frames (stride T/2), each
  window normalised by the bundle's `PreprocessSpec`; label = the action number in the file name minus one;
* a generated split (`{split}_data.npy` + `{split}_label.pkl`, already normalised): read through
  `sttr.training.feeder.SkeletonFeeder`; `SOURCE` is the folder (split `test`, else `train`) or a `*_data.npy` file;
* a folder of `.npy` files, each one model-ready window (C, T, V, M) or a batch (N, C, T, V, M); no labels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sttr.model.preprocess import PreprocessSpec

__all__ = ["WindowSet", "load_windows", "ntu_clip_windows", "split_holdout"]

log = logging.getLogger(__name__)


@dataclass
class WindowSet:
    """Model-ready windows with their provenance.

    Attributes:
        windows: float32 (N, C, T, V, M).
        labels: int64 (N,) class indices, -1 where unknown.
        groups: (N,) source clip of each window (windows of one clip are never split between calibration and
            held-out sets).
        source: What was read (for reports).
    """

    windows: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def subset(self, index: np.ndarray) -> "WindowSet":
        return WindowSet(self.windows[index], self.labels[index], self.groups[index], self.source)

    @property
    def has_labels(self) -> bool:
        return bool(len(self) and (self.labels >= 0).all())


def _spec_for(preprocess: Mapping[str, Any] | None, T: int, M: int) -> PreprocessSpec:
    d = dict(preprocess or {})
    d["window"], d["persons"] = int(T), int(M)
    return PreprocessSpec.from_dict(d)


def ntu_clip_windows(path: str | Path, spec: PreprocessSpec, *, stride: int | None = None) -> list[np.ndarray]:
    """Cut one NTU `.skeleton` clip into normalised windows (C, T, V, M) of `spec.window` frames.

    Bodies are slotted by body id in order of first appearance; the first `spec.persons` are kept.
    """
    from sttr.training.readers.ntu import read_skeleton

    clip = read_skeleton(path).by_body_id()  # (F, B, V, 3)
    F, B, V, _ = clip.shape
    raw = np.zeros((3, F, V, spec.persons), dtype=np.float32)
    keep = min(B, spec.persons)
    raw[..., :keep] = clip[:, :keep].transpose(3, 0, 2, 1)
    T = spec.window
    stride = stride or max(1, T // 2)
    starts = list(range(0, max(F - T, 0) + 1, stride))
    if F > T and starts[-1] != F - T:
        starts.append(F - T)
    return [spec.apply(raw[:, s:s + T]) for s in starts]


def _ntu_windows(files: list[Path], spec: PreprocessSpec, stride: int | None) -> WindowSet:
    from sttr.training.readers.ntu import parse_sample_name

    windows, labels, groups = [], [], []
    for g, path in enumerate(files):
        clip = ntu_clip_windows(path, spec, stride=stride)
        windows += clip
        labels += [parse_sample_name(path).label] * len(clip)
        groups += [g] * len(clip)
    return WindowSet(np.stack(windows).astype(np.float32), np.asarray(labels, dtype=np.int64),
                     np.asarray(groups, dtype=np.int64), f"{len(files)} NTU .skeleton file(s)")


def _generated_windows(data_file: Path, T: int) -> WindowSet:
    from sttr.training.feeder import SkeletonFeeder

    split = data_file.name[: -len("_data.npy")]
    feeder = SkeletonFeeder(data_file.parent, split, window=T)
    windows = np.stack([feeder[i][0].numpy() for i in range(len(feeder))]).astype(np.float32)
    labels = np.asarray([feeder.label_of(int(i)) for i in feeder.indices], dtype=np.int64)
    return WindowSet(windows, labels, np.arange(len(labels)), f"generated split {data_file}")


def _npy_windows(files: list[Path]) -> WindowSet:
    arrays = []
    for path in files:
        try:
            a = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path}: not a readable .npy array of windows ({str(err).splitlines()[0]})") from None
        if a.ndim == 4:
            a = a[None]
        if a.ndim != 5:
            raise ValueError(f"{path}: expected a window (C, T, V, M) or windows (N, C, T, V, M), got {a.shape}")
        if arrays and a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"{path}: windows of (C, T, V, M) = {a.shape[1:]}, but {files[0].name} has "
                             f"{arrays[0].shape[1:]}; every .npy file must hold windows of one shape")
        arrays.append(a)
    windows = np.concatenate(arrays)
    if len(arrays) == 1:  # one batch file: its clips are unknown, so each window counts as one
        groups = np.arange(len(windows))
    else:
        groups = np.concatenate([np.full(len(a), g) for g, a in enumerate(arrays)])
    return WindowSet(windows, np.full(len(windows), -1, dtype=np.int64), groups, f"{len(files)} .npy file(s)")


def _generated_split(folder: Path) -> Path | None:
    for split in ("test", "val", "train"):
        if (folder / f"{split}_data.npy").is_file():
            return folder / f"{split}_data.npy"
    found = sorted(folder.glob("*_data.npy"))
    return found[0] if found else None


def load_windows(source: str | Path, *, T: int, M: int, preprocess: Mapping[str, Any] | None = None,
                 stride: int | None = None, limit: int | None = None, C: int | None = None,
                 V: int | None = None) -> WindowSet:
    """Read real windows from `source` (see the module docstring), shaped for a bundle (C, T, V, M).

    Args:
        source: Folder or file.
        T: Frames per window.
        M: Person slots.
        preprocess: The bundle's preprocess dict (applied to raw clips only; generated data is already normalised).
        stride: Frames between consecutive windows of a raw clip (default T/2).
        limit: Keep at most this many windows, spread evenly over the set.
        C, V: Channels and joints the windows must have (None: not checked).

    Raises:
        FileNotFoundError: `source` does not exist or holds nothing readable.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"calibration data {source} does not exist")
    if source.is_file():
        files = [source]
    else:
        generated = _generated_split(source)
        files = [generated] if generated else sorted(source.glob("*.skeleton")) or sorted(source.glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"no calibration data in {source}: expected .skeleton files, a generated split "
                                f"({{split}}_data.npy + {{split}}_label.pkl) or .npy windows")
    if files[0].name.endswith("_data.npy"):
        ws = _generated_windows(files[0], T)
    elif files[0].suffix == ".skeleton":
        ws = _ntu_windows(files, _spec_for(preprocess, T, M), stride)
    else:
        ws = _npy_windows(files)
    _, C_got, T_got, V_got, M_got = ws.windows.shape
    wrong = [f"{name} = {got} (needs {want})" for name, got, want in (("C", C_got, C), ("T", T_got, T),
                                                                      ("V", V_got, V), ("M", M_got, M))
             if want is not None and got != want]
    if wrong:
        raise ValueError(f"{source}: windows are (C, T, V, M) = {tuple(ws.windows.shape[1:])}: {', '.join(wrong)}"
                         + (" - data of another skeleton layout?" if V is not None and V_got != V else ""))
    finite = np.isfinite(ws.windows).reshape(len(ws), -1).all(axis=1)
    if not finite.all():  # the quantizer would fit NaN ranges, or assert deep inside ONNX Runtime
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{source}: {len(bad)} of {len(ws)} windows hold NaN/inf values (e.g. window {bad[0]}); "
                         "calibration needs finite windows")
    if limit is not None and len(ws) > limit:
        ws = ws.subset(np.unique(np.linspace(0, len(ws) - 1, limit).round().astype(np.int64)))
    log.info("read %d windows from %s", len(ws), ws.source)
    return ws


def split_holdout(ws: WindowSet, holdout: float = 0.5, seed: int = 0) -> tuple[WindowSet, WindowSet]:
    """Split into (calibration, held-out) by source clip, about `holdout` of the clips held out (at least one each)."""
    clips = np.unique(ws.groups)
    if len(clips) < 2:
        raise ValueError(f"need windows from at least 2 clips to hold some out, got {len(clips)} ({ws.source})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(clips)
    n_hold = min(max(1, int(round(len(clips) * holdout))), len(clips) - 1)
    held = np.isin(ws.groups, order[:n_hold])
    return ws.subset(np.flatnonzero(~held)), ws.subset(np.flatnonzero(held))
