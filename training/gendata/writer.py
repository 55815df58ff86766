"""Atomic, resumable output of one split: `{split}_data.npy`, `{split}_label.pkl`, `{split}_meta.json`.

The data is written into `{split}_data.npy.partial` (an `.npy` opened with `np.lib.format.open_memmap`); which
samples are done is recorded in `{split}_progress.json`, written atomically after each flush. A rerun with the same
fingerprint (preprocessing, sample list) reopens the partial file and continues. When every sample is done the
partial file is renamed (or, if samples were skipped, compacted) into place; the label pickle follows, and the meta
JSON is written last, so a meta file whose fingerprint matches means the split is complete.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import time
from pathlib import Path
import numpy as np

from sttr.model.atomic import atomic_write_bytes

__all__ = ["SplitWriter", "atomic_write_bytes", "atomic_write_json", "split_paths", "finished_meta"]

log = logging.getLogger(__name__)
PENDING, DONE, FAILED = ".", "o", "x"
_COPY_ROWS = 256


def atomic_write_json(path: Path, obj: dict) -> None:
    """Atomic JSON write: one top-level key per line, values compact (per-sample lists stay one line each)."""
    body = ",\n".join(f" {json.dumps(str(k))}: {json.dumps(v, ensure_ascii=False)}" for k, v in obj.items())
    atomic_write_bytes(path, ("{\n" + body + "\n}\n").encode("utf-8"))


def split_paths(folder: Path, split: str) -> dict[str, Path]:
    return {"data": folder / f"{split}_data.npy", "label": folder / f"{split}_label.pkl",
            "meta": folder / f"{split}_meta.json", "partial": folder / f"{split}_data.npy.partial",
            "progress": folder / f"{split}_progress.json"}


def finished_meta(folder: Path, split: str, fingerprint: str) -> dict | None:
    """The meta dict of a complete split with this fingerprint, else None."""
    paths = split_paths(folder, split)
    if not (paths["meta"].is_file() and paths["data"].is_file() and paths["label"].is_file()):
        return None
    try:
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return meta if meta.get("fingerprint") == fingerprint else None


class SplitWriter:
    """Writes N samples of shape `sample_shape` into a split, resuming an interrupted run with the same fingerprint.

    Args:
        folder: `{out}/{benchmark}`.
        split: `train` or `test`.
        num_samples: N, the samples planned (skipped ones are dropped at `finish`).
        sample_shape: (C, T, V, M).
        fingerprint: Identifies the configuration and sample list; a different one restarts from scratch.
    """

    def __init__(self, folder: Path, split: str, num_samples: int, sample_shape: tuple[int, ...],
                 fingerprint: str) -> None:
        self.folder, self.split, self.fingerprint = Path(folder), split, fingerprint
        self.paths = split_paths(self.folder, split)
        self.folder.mkdir(parents=True, exist_ok=True)
        shape = (num_samples, *sample_shape)
        self.status, self.errors = [PENDING] * num_samples, {}
        self.truncated: set[int] = set()  # done samples longer than the window (cut), kept across resumes
        progress = self._load_progress(num_samples)
        if progress is not None and self.paths["partial"].is_file():
            self.data = np.lib.format.open_memmap(self.paths["partial"], mode="r+")
            if self.data.shape != shape or self.data.dtype != np.float32:
                raise RuntimeError(f"{self.paths['partial']}: shape {self.data.shape} does not match {shape}")
            self.status, self.errors = list(progress["status"]), {int(k): v for k, v in progress["errors"].items()}
            self.truncated = {int(i) for i in progress.get("truncated", [])}
            log.info("%s: resuming, %d of %d samples already done", split, self.num_done, num_samples)
        else:
            self.data = np.lib.format.open_memmap(self.paths["partial"], mode="w+", dtype=np.float32, shape=shape)
        self._last_save = time.monotonic()

    def _load_progress(self, num_samples: int) -> dict | None:
        try:
            progress = json.loads(self.paths["progress"].read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if progress.get("fingerprint") != self.fingerprint or len(progress.get("status", "")) != num_samples:
            return None
        return progress

    @property
    def num_done(self) -> int:
        return sum(s != PENDING for s in self.status)

    def pending(self) -> list[int]:
        """Indices still to process."""
        return [i for i, s in enumerate(self.status) if s == PENDING]

    def put(self, index: int, sample: np.ndarray, truncated: bool = False) -> None:
        self.data[index] = sample
        self.status[index] = DONE
        if truncated:
            self.truncated.add(index)
        self._maybe_save()

    def fail(self, index: int, reason: str) -> None:
        self.status[index], self.errors[index] = FAILED, reason
        self._maybe_save()

    def _maybe_save(self, every_s: float = 10.0) -> None:
        if time.monotonic() - self._last_save >= every_s:
            self.save_progress()

    def save_progress(self) -> None:
        self.data.flush()
        atomic_write_json(self.paths["progress"], {"fingerprint": self.fingerprint, "status": "".join(self.status),
                                                   "errors": {str(k): v for k, v in self.errors.items()},
                                                   "truncated": sorted(self.truncated)})
        self._last_save = time.monotonic()

    def finish(self, names: list[str], labels: list[int], meta: dict) -> list[int]:
        """Move the data into place, write the label pickle and the meta JSON; returns the kept indices."""
        if self.pending():
            raise RuntimeError(f"{self.split}: {len(self.pending())} samples were not processed")
        kept = [i for i, s in enumerate(self.status) if s == DONE]
        self.data.flush()
        if len(kept) == len(self.status):
            del self.data
            os.replace(self.paths["partial"], self.paths["data"])
        else:
            self._compact(kept)
        names_kept, labels_kept = [names[i] for i in kept], [int(labels[i]) for i in kept]
        atomic_write_bytes(self.paths["label"], pickle.dumps((names_kept, labels_kept), protocol=4))
        atomic_write_json(self.paths["meta"], {**meta, "fingerprint": self.fingerprint})
        self.paths["progress"].unlink(missing_ok=True)
        return kept

    def _compact(self, kept: list[int]) -> None:
        tmp = self.paths["data"].with_name(f".{self.paths['data'].name}.tmp{os.getpid()}")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(kept), *self.data.shape[1:]))
        for start in range(0, len(kept), _COPY_ROWS):
            rows = kept[start: start + _COPY_ROWS]
            out[start: start + len(rows)] = self.data[rows]
        out.flush()
        del out, self.data
        os.replace(tmp, self.paths["data"])
        self.paths["partial"].unlink()
