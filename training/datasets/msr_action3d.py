"""MSR Action3D (Li et al. 2010), real-world skeletons of Vemulapalli's package: `kinect20` layout, 20 actions.

Files `aAA_sSS_eEE_skeleton3D.txt`: one line `x y z c` per joint, 20 lines per frame (metres, y up, z depth); the
confidence c is dropped. The standard 557-file list (`files_used_in_cvpr12_paper.txt`) is used; all-zero frames are
dropped before normalising (SOURCES.md). Protocols:
* `as1`, `as2`, `as3` (P1, Li et al.): 8-action subsets, train on subjects 1,3,5,7,9, test on 2,4,6,8,10.
* `cs` (P2, Wang et al. 2012): all 20 actions, odd subjects train, even subjects test.
* `split_<k>` (P3, Vemulapalli et al. 2014): all 20 actions, the k-th (k = 1..10) half/half subject split of
  `tr_te_splits.mat` (`tr_subjects` / `te_subjects` rows, 1-based subject ids); report the mean over the 10 splits.
  The splits as read from the file (train subjects | test subjects):

      split_1  1 2 3 5 10 | 4 6 7 8 9      split_6  2 3 5 6 10 | 1 4 7 8 9
      split_2  2 3 4 5 10 | 1 6 7 8 9      split_7  2 3 5 7 8  | 1 4 6 9 10
      split_3  2 3 5 6 7  | 1 4 8 9 10     split_8  2 3 5 7 9  | 1 4 6 8 10
      split_4  2 3 5 6 8  | 1 4 7 9 10     split_9  2 3 5 8 10 | 1 4 6 7 9
      split_5  2 3 5 6 9  | 1 4 7 8 10     split_10 2 3 5 9 10 | 1 4 6 7 8

  Subjects 2, 3 and 5 train in every split; 1 and 4 (4 is the short subject, 38 sequences) are tested in nine of
  the ten. `action_sets` of the same file equals `ACTION_SETS`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import RawSample, drop_empty_frames, make_spec, write_benchmark

__all__ = ["ACTIONS", "ACTION_SETS", "PROTOCOLS", "SPLITS", "read_sequence", "load_msr_action3d", "half_splits",
           "protocol_splits", "generate_msr_action3d"]

log = logging.getLogger(__name__)

ACTIONS = ("high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
           "draw tick", "draw circle", "hand clap", "two hand wave", "side boxing", "bend", "forward kick",
           "side kick", "jogging", "tennis swing", "tennis serve", "golf swing", "pickup and throw")
# 1-based action ids of the P1 subsets
ACTION_SETS = {"as1": (2, 3, 5, 6, 10, 13, 18, 20), "as2": (1, 4, 7, 8, 9, 11, 12, 14),
               "as3": (6, 14, 15, 16, 17, 18, 19, 20)}
SPLITS = tuple(f"split_{k}" for k in range(1, 11))  # P3
PROTOCOLS = ("as1", "as2", "as3", "cs", *SPLITS)
_NAME = re.compile(r"a(\d\d)_s(\d\d)_e(\d\d)")
_V = 20


def read_sequence(path: str | Path) -> np.ndarray:
    """One file -> (T, 1, 20, 3) float32 (x, y, z in metres), all-zero frames dropped."""
    path = Path(path)
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a table of 'x y z c' rows: {err}") from None
    if values.shape[1] != 4 or values.shape[0] % _V:
        raise ValueError(f"{path}: expected rows of 4 values, a multiple of {_V} rows; got {values.shape}")
    joints = values[:, :3].reshape(-1, _V, 3)[:, None].astype(np.float32)
    return drop_empty_frames(joints)


def load_msr_action3d(root: str | Path, file_list: Sequence[str] | None = None) -> list[RawSample]:
    """The sequences of the standard list (or `file_list`), in list order; all-zero sequences are skipped."""
    root = Path(root)
    folder = root / "real_world_coordinates" if (root / "real_world_coordinates").is_dir() else root
    if file_list is None:
        listing = folder / "files_used_in_cvpr12_paper.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"MSR Action3D: {listing} not found (expected the real_world_coordinates "
                                    "folder of the dataset)")
        file_list = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    samples = []
    for name in file_list:
        m = _NAME.fullmatch(name)
        if not m:
            raise ValueError(f"MSR Action3D: bad sample name {name!r} (expected aAA_sSS_eEE)")
        action, subject, rep = (int(g) for g in m.groups())
        path = folder / f"{name}_skeleton3D.txt"
        joints = read_sequence(path)
        if joints.shape[0] == 0:
            log.warning("MSR Action3D: %s holds only zeros; skipped", path.name)
            continue
        samples.append(RawSample(name=name, joints=joints, label=action - 1, subject=subject, camera=rep,
                                 source=str(path)))
    return samples


def half_splits(root: str | Path) -> list[tuple[list[int], list[int]]]:
    """The 10 (train subjects, test subjects) pairs of `tr_te_splits.mat` (P3), in file order."""
    path = Path(root) / "tr_te_splits.mat"
    if not path.is_file():
        raise FileNotFoundError(f"MSR Action3D: {path} not found (the P3 split_k protocols need it)")
    try:
        import scipy.io
    except ImportError as err:
        raise ImportError("reading tr_te_splits.mat needs scipy: pip install 'sttr[train]'") from err
    m = scipy.io.loadmat(path, squeeze_me=True)
    tr, te = np.atleast_2d(m["tr_subjects"]), np.atleast_2d(m["te_subjects"])
    splits = [(sorted(int(s) for s in a), sorted(int(s) for s in b)) for a, b in zip(tr, te)]
    for k, (a, b) in enumerate(splits, 1):
        if set(a) & set(b):
            raise ValueError(f"MSR Action3D: {path.name} split {k}: subjects {sorted(set(a) & set(b))} both train "
                             "and test")
    if len(splits) != len(SPLITS):
        raise ValueError(f"MSR Action3D: {path.name} holds {len(splits)} splits, expected {len(SPLITS)}")
    return splits


def protocol_splits(samples: Sequence[RawSample], protocol: str, root: str | Path | None = None
                    ) -> tuple[dict[str, list[int]], dict[int, int] | None]:
    """(split -> sample indices, label map or None) of a protocol (`split_k` needs `root` for tr_te_splits.mat)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"MSR Action3D: unknown protocol {protocol!r}; expected one of as1, as2, as3, cs, "
                         "split_1..split_10")
    if protocol in SPLITS:
        if root is None:
            raise ValueError("MSR Action3D: the split_k protocols (P3) need the dataset root (tr_te_splits.mat)")
        train_subjects, test_subjects = half_splits(root)[SPLITS.index(protocol)]
        return ({"train": [i for i, s in enumerate(samples) if s.subject in train_subjects],
                 "test": [i for i, s in enumerate(samples) if s.subject in test_subjects]}, None)
    if protocol == "cs":
        keep, label_map = range(len(samples)), None
    else:
        actions = ACTION_SETS[protocol]
        label_map = {a - 1: i for i, a in enumerate(actions)}
        keep = [i for i, s in enumerate(samples) if s.label in label_map]
    train = [i for i in keep if samples[i].subject % 2 == 1]
    test = [i for i in keep if samples[i].subject % 2 == 0]
    return {"train": train, "test": test}, label_map


def generate_msr_action3d(root: str | Path, out: str | Path, *, window: int = 64, bones: bool = False,
                          protocols: Sequence[str] = PROTOCOLS) -> dict[str, Path]:
    """Write `{out}/{protocol}/{split}_*` for each protocol; returns protocol -> folder."""
    samples = load_msr_action3d(root)
    spec = make_spec("kinect20", window, bones=bones, fps=15.0)
    folders = {}
    for protocol in protocols:
        splits, label_map = protocol_splits(samples, protocol, _data_folder(root))
        names = list(ACTIONS) if label_map is None else [ACTIONS[a - 1] for a in ACTION_SETS[protocol]]
        if protocol in SPLITS:
            train_subjects, test_subjects = half_splits(_data_folder(root))[SPLITS.index(protocol)]
            desc = f"tr_te_splits.mat {protocol}: subjects {train_subjects} train, {test_subjects} test"
        else:
            desc = "odd subjects train, even subjects test" + ("" if label_map is None else
                                                               f", actions {ACTION_SETS[protocol]}")
        folders[protocol] = write_benchmark(
            Path(out) / protocol, samples, splits, spec=spec, label_names=names, dataset="msr_action3d",
            benchmark=protocol, label_map=label_map, extra={"protocol": desc})
    return folders


def _data_folder(root: str | Path) -> Path:
    """The dataset folder holding the .mat files (`root`, or its parent when given real_world_coordinates)."""
    root = Path(root)
    return root.parent if root.name == "real_world_coordinates" and not (root / "tr_te_splits.mat").is_file() else root
