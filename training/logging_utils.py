"""Run logs: a CSV file of per-epoch metrics, optional TensorBoard, and progress bars with samples/s (rank 0)."""
from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Iterable

__all__ = ["CSVLog", "TensorBoardLog", "Throughput", "progress"]

log = logging.getLogger(__name__)


class CSVLog:
    """Append rows of metrics to a CSV file; the header is the first row's keys (later keys are added at the end
    of the row only if already in the header, so keep rows uniform). Rows of epochs >= `truncate_from` are dropped
    on open, so a resumed run does not duplicate them."""

    def __init__(self, path: str | Path, truncate_from: int | None = None):
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.fields = list(rows[0].keys())
            if truncate_from is not None:
                kept = [r for r in rows if int(r.get("epoch", -1)) < truncate_from]
                self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            if self.fields:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row.keys())
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


class TensorBoardLog:
    """Scalars to TensorBoard when `torch.utils.tensorboard` works; a no-op otherwise (with one log line)."""

    def __init__(self, log_dir: str | Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # tensorboard is an optional extra
            log.warning("TensorBoard disabled (%s); install it with: pip install 'sttr[train]'", err)
            return
        self.writer = SummaryWriter(str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                if value is not None:
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def progress(iterable: Iterable, *, total: int, desc: str, enabled: bool) -> Iterable:
    """A tqdm progress bar over `iterable` when enabled and tqdm is installed (it has `set_postfix`); the plain
    iterable otherwise."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            return iterable
        return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)
    return iterable


class Throughput:
    """Samples per second since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start, self.samples = time.perf_counter(), 0

    def add(self, n: int) -> float:
        self.samples += n
        return self.samples / max(time.perf_counter() - self.start, 1e-9)
