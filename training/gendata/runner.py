"""Generate one split: load raw samples in parallel workers, normalise them, write them resumably.

A dataset module supplies the sample list (`SampleTask`s) and a picklable `loader(task) -> (C, T, V, M)` raw
window; this module applies the `PreprocessSpec` in the workers, writes through `SplitWriter` and returns a
`SplitSummary` (samples per class, skipped files and why).
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sttr.model.preprocess import PreprocessSpec

from .writer import SplitWriter, finished_meta

__all__ = ["SampleTask", "SplitSummary", "Reuse", "generate_split", "FORMAT"]

log = logging.getLogger(__name__)
FORMAT = "sttr.gendata/1"
Loader = Callable[["SampleTask"], np.ndarray]


@dataclass(frozen=True)
class SampleTask:
    """One sample to generate: its name (as stored in the label pickle), source file, label and metadata."""

    name: str
    path: str
    label: int
    info: tuple[tuple[str, Any], ...] = ()


@dataclass
class SplitSummary:
    """What one split holds and what was left out."""

    split: str
    num_samples: int
    per_class: dict[int, int]
    skipped: list[dict[str, str]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    truncated: int = 0
    reused: bool = False
    path: str = ""


_WORKER: dict[str, Any] = {}


def _init_worker(loader: Loader, spec: PreprocessSpec) -> None:
    _WORKER["loader"], _WORKER["spec"] = loader, spec


def _work(item: tuple[int, SampleTask]) -> tuple[int, np.ndarray | None, str | None, bool]:
    """Load and normalise one sample; errors come back as a reason string (never raised across processes)."""
    index, task = item
    loader, spec = _WORKER["loader"], _WORKER["spec"]
    try:
        raw = loader(task)
    except (ValueError, OSError) as err:  # format errors of the readers are ValueErrors naming file and line
        return index, None, f"{type(err).__name__}: {err}", False
    bad = ~np.isfinite(raw)
    if bad.any():  # written as they are, they would stop training at the first batch holding them
        c, t, v, m = (int(i[0]) for i in np.nonzero(bad))
        return index, None, (f"ValueError: {int(bad.sum())} non-finite values (NaN/inf) in the coordinates, the first "
                             f"at frame {t}, joint {v}, person {m}"), False
    truncated = raw.shape[1] > spec.window
    try:
        return index, spec.apply(raw[:, : spec.window]), None, truncated
    except ValueError as err:
        return index, None, f"{type(err).__name__}: {err}", truncated


def fingerprint(spec: PreprocessSpec, tasks: list[SampleTask], extra: dict) -> str:
    h = hashlib.sha256(json.dumps({"format": FORMAT, "spec": spec.to_dict(), "extra": extra}, sort_keys=True,
                                  default=str).encode())
    for task in tasks:
        h.update(f"{task.name}\0{task.path}\0{task.label}\0{_file_version(task.path)}\n".encode())
    return h.hexdigest()


def _file_version(path: str) -> str:
    """Size and modification time of a sample's file: a rerun after the file changed must not keep old data."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


class Reuse:
    """Finished samples of another benchmark over the same files (same spec): copied instead of re-read.

    Args:
        folders: `{out}/{benchmark}` folders whose `train`/`test` splits are complete.
    """

    def __init__(self, folders: list[Path]) -> None:
        self.rows: dict[str, tuple[np.ndarray, int]] = {}
        self.errors: dict[str, str] = {}
        self.cut: set[str] = set()  # samples that were longer than the window
        for folder in folders:
            for split in ("train", "test"):
                meta = json.loads((folder / f"{split}_meta.json").read_text(encoding="utf-8"))
                data = np.load(folder / f"{split}_data.npy", mmap_mode="r")
                with open(folder / f"{split}_label.pkl", "rb") as f:
                    names, _ = pickle.load(f)
                self.rows.update({name: (data, row) for row, name in enumerate(names)})
                self.cut.update(name for name, flag in zip(names, meta.get("truncated_rows", "")) if flag == "1")
                self.errors.update({item["name"]: item["reason"] for item in meta["skipped"]})

    def split(self, pending: list[tuple[int, SampleTask]]) -> tuple[list, list[tuple[int, SampleTask]]]:
        """(results for the samples found here, the pending samples that still need loading)."""
        found, rest = [], []
        for index, task in pending:
            if task.name in self.rows:
                data, row = self.rows[task.name]
                found.append((index, np.asarray(data[row]), None, task.name in self.cut))
            elif task.name in self.errors:
                found.append((index, None, self.errors[task.name], False))
            else:
                rest.append((index, task))
        return found, rest


def _results(pending: list[tuple[int, SampleTask]], loader: Loader, spec: PreprocessSpec, workers: int,
             reuse: Reuse | None = None):
    if reuse is not None:
        found, pending = reuse.split(pending)
        yield from found
    if not pending:
        return
    if workers <= 1:
        _init_worker(loader, spec)
        yield from map(_work, pending)
        return
    with mp.get_context().Pool(workers, initializer=_init_worker, initargs=(loader, spec)) as pool:
        yield from pool.imap_unordered(_work, pending, chunksize=4)


def _sample_columns(tasks: list[SampleTask], kept: list[int]) -> dict[str, list]:
    """Per-sample metadata as top-level lists: info key `subject` -> `subjects` (what the feeder reads)."""
    columns: dict[str, list] = {}
    for i in kept:
        for key, value in tasks[i].info:
            columns.setdefault(f"{key}s", []).append(value)
    return columns


def _split_meta(meta: dict, split: str, spec: PreprocessSpec, tasks: list[SampleTask], kept: list[int],
                per_class: dict[int, int], skipped: list, excluded: list, cut: set[int]) -> dict:
    shape = [len(kept), spec.out_channels, spec.window, spec.layout_obj.num_joints, spec.persons]
    return {
        "format": FORMAT, **meta, "split": split, "preprocess": spec.to_dict(), "num_samples": len(kept),
        "shape": shape, "channels": list(spec.channels), **_sample_columns(tasks, kept), "skipped": skipped,
        "excluded": excluded, "truncated_rows": "".join("1" if i in cut else "0" for i in kept),
        "counts": {"per_class": {str(k): v for k, v in per_class.items()}, "skipped": len(skipped),
                   "excluded": len(excluded), "truncated": len(cut)},
    }


def generate_split(folder: Path, split: str, tasks: list[SampleTask], loader: Loader, spec: PreprocessSpec, *,
                   meta: dict, excluded: list[dict[str, str]] | None = None, workers: int = 1,
                   progress: bool = True, reuse: Reuse | None = None) -> SplitSummary:
    """Write `{folder}/{split}_data.npy`, `_label.pkl` and `_meta.json` for the tasks, resuming when possible.

    Args:
        folder: Output folder (`{out}/{benchmark}`).
        split: `train` or `test`.
        tasks: Samples in output order.
        loader: Picklable function task -> raw float32 (C, T, V, M) window (any T; longer ones are truncated).
        spec: The normalisation applied to every sample.
        meta: Dataset-level fields for the meta JSON (dataset, benchmark, label_names, ...).
        excluded: Samples left out before loading (missing-skeleton list, no skeleton) with reasons; recorded.
        workers: Worker processes (1: in this process).
        progress: Show a tqdm progress bar.
        reuse: Samples already generated with the same spec (another benchmark): copied, not re-read.
    """
    excluded = list(excluded or [])
    fp = fingerprint(spec, tasks, {k: v for k, v in meta.items() if k != "label_names"})
    done = finished_meta(folder, split, fp)
    if done is not None:
        log.info("%s/%s is complete with the same configuration; kept as is", folder, split)
        return SplitSummary(split, done["num_samples"], {int(k): v for k, v in done["counts"]["per_class"].items()},
                            done["skipped"], done["excluded"], done["counts"]["truncated"], True, str(folder))
    shape = (spec.out_channels, spec.window, spec.layout_obj.num_joints, spec.persons)
    writer = SplitWriter(folder, split, len(tasks), shape, fp)
    pending = [(i, tasks[i]) for i in writer.pending()]
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), initial=writer.num_done, desc=f"{meta.get('benchmark', '')} {split}".strip(),
               unit="sample", disable=not progress, dynamic_ncols=True)
    try:
        for index, sample, error, was_truncated in _results(pending, loader, spec, workers, reuse):
            if error is None:
                writer.put(index, sample, was_truncated)
            else:
                log.warning("skipping %s: %s", tasks[index].path, error)
                writer.fail(index, error)
            bar.update(1)
    finally:
        bar.close()
        writer.save_progress()
    skipped = [{"name": tasks[i].name, "path": tasks[i].path, "reason": r} for i, r in sorted(writer.errors.items())]
    kept = [i for i, s in enumerate(writer.status) if s == "o"]
    per_class = dict(sorted(Counter(tasks[i].label for i in kept).items()))
    cut = writer.truncated & set(kept)  # also those done before a resume
    full_meta = _split_meta(meta, split, spec, tasks, kept, per_class, skipped, excluded, cut)
    writer.finish([t.name for t in tasks], [t.label for t in tasks], full_meta)
    return SplitSummary(split, len(kept), per_class, skipped, excluded, len(cut), False, str(folder))
