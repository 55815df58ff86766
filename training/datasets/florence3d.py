"""Florence 3D Actions (Seidenari et al. 2013): `florence15` layout, 9 actions, 10 actors, 215 videos.

Read from `skeletal_data.mat` (scipy): field `original_skeletal_data` is 3 x 15 x T with rows (x, depth, height) in
metres; we use (x, height, depth) = rows (0, 2, 1), i.e. y up and z depth like the Kinect layouts. Protocols:
* `loao_<k>` (P1, the authors' recommendation): leave actor k out (test), the other nine train; k = 1..10.
* `split_<k>` (P2, Vemulapalli et al. 2014): the k-th half/half subject split of `tr_te_splits.mat`, k = 1..10.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import RawSample, make_spec, write_benchmark

__all__ = ["ACTIONS", "load_florence3d", "protocol_splits", "protocols", "generate_florence3d", "half_splits"]

log = logging.getLogger(__name__)

ACTIONS = ("wave", "drink from a bottle", "answer phone", "clap", "tight lace", "sit down", "stand up",
           "read watch", "bow")


def _loadmat(path: Path):
    try:
        import scipy.io
    except ImportError as err:
        raise ImportError("reading Florence 3D needs scipy: pip install 'sttr[train]'") from err
    if not path.is_file():
        raise FileNotFoundError(f"Florence 3D: {path} not found")
    return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)


def load_florence3d(root: str | Path) -> list[RawSample]:
    """The 215 videos as (T, 1, 15, 3) (x, height, depth) in metres, named `v{index:03d}_a{actor}_c{action}`."""
    root = Path(root)
    entries = np.atleast_1d(_loadmat(root / "skeletal_data.mat")["skeletal_data"])
    samples = []
    for i, e in enumerate(entries):
        raw = np.asarray(e.original_skeletal_data, dtype=np.float32)
        if raw.ndim != 3 or raw.shape[:2] != (3, 15):
            raise ValueError(f"Florence 3D: video {i + 1}: original_skeletal_data of shape {raw.shape}, "
                             "expected (3, 15, T)")
        joints = raw[[0, 2, 1]].transpose(2, 1, 0)[:, None]  # (T, 1, V, C): x, height, depth
        actor, action = int(e.subject), int(e.action)
        samples.append(RawSample(name=f"v{i + 1:03d}_a{actor:02d}_c{action}", joints=np.ascontiguousarray(joints),
                                 label=action - 1, subject=actor, source=str(root / "skeletal_data.mat")))
    return samples


def half_splits(root: str | Path) -> list[tuple[list[int], list[int]]]:
    """The 10 (train subjects, test subjects) splits of `tr_te_splits.mat`."""
    m = _loadmat(Path(root) / "tr_te_splits.mat")
    return [([int(s) for s in tr], [int(s) for s in te]) for tr, te in zip(m["tr_subjects"], m["te_subjects"])]


def protocols() -> list[str]:
    return [f"loao_{k}" for k in range(1, 11)] + [f"split_{k}" for k in range(1, 11)]


def protocol_splits(samples: Sequence[RawSample], protocol: str,
                    root: str | Path | None = None) -> dict[str, list[int]]:
    """split -> sample indices of a protocol (`split_k` needs `root` for tr_te_splits.mat)."""
    kind, _, k = protocol.partition("_")
    if protocol not in protocols():
        raise ValueError(f"Florence 3D: unknown protocol {protocol!r}; expected loao_1..10 or split_1..10")
    if kind == "loao":
        test_subjects = {int(k)}
    else:
        if root is None:
            raise ValueError("Florence 3D split_k protocols need the dataset root (tr_te_splits.mat)")
        test_subjects = set(half_splits(root)[int(k) - 1][1])
    return {"train": [i for i, s in enumerate(samples) if s.subject not in test_subjects],
            "test": [i for i, s in enumerate(samples) if s.subject in test_subjects]}


def generate_florence3d(root: str | Path, out: str | Path, *, window: int = 32, bones: bool = False,
                        which: Sequence[str] | None = None) -> dict[str, Path]:
    """Write `{out}/{protocol}/{split}_*` for each protocol (default: all 20); returns protocol -> folder."""
    samples = load_florence3d(root)
    spec = make_spec("florence15", window, bones=bones, fps=None)
    folders = {}
    for protocol in which or protocols():
        splits = protocol_splits(samples, protocol, root)
        folders[protocol] = write_benchmark(Path(out) / protocol, samples, splits, spec=spec,
                                            label_names=ACTIONS, dataset="florence3d", benchmark=protocol,
                                            extra={"protocol": protocol})
    return folders
