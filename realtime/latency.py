"""Latency bookkeeping: per-stage samples in milliseconds and their p50 / p95 / p99 summary; benchmark reports
(what machine and software they ran on, written atomically as JSON).

Samples go into preallocated numpy arrays (one per stage, ``capacity`` samples, the oldest overwritten), so a long
live run records in O(1) without growing. numpy only.
"""
from __future__ import annotations

import json
import math
import os
import platform
import threading
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import numpy as np

from sttr.model.atomic import atomic_open

__all__ = ["LatencyRecorder", "summarize", "format_table", "write_json", "machine_info", "PERCENTILES"]

PERCENTILES = (50, 95, 99)


def summarize(values_ms: np.ndarray | Iterable[float]) -> dict[str, float]:
    """count, mean, p50, p95, p99 and max of a sample in milliseconds (NaN statistics when empty)."""
    arr = np.asarray(list(values_ms) if not isinstance(values_ms, np.ndarray) else values_ms, dtype=np.float64)
    if arr.size == 0:
        return {"count": 0, "mean": math.nan, **{f"p{p}": math.nan for p in PERCENTILES}, "max": math.nan}
    pct = np.percentile(arr, PERCENTILES)
    return {"count": int(arr.size), "mean": float(arr.mean()),
            **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pct)}, "max": float(arr.max())}


class LatencyRecorder:
    """Collects per-stage durations (ms) of many windows or frames.

    Args:
        stages: stage names, in the order tables show them; ``record`` may add new ones.
        capacity: samples kept per stage (the newest ones).
    """

    def __init__(self, stages: Iterable[str] = (), capacity: int = 100_000) -> None:
        self.capacity = int(capacity)
        self._data: dict[str, np.ndarray] = {}
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()
        for stage in stages:
            self._add_stage(stage)

    def _add_stage(self, stage: str) -> None:
        self._data[stage] = np.empty(self.capacity, dtype=np.float64)
        self._count[stage] = 0

    def record(self, stage: str, value_ms: float) -> None:
        """Add one sample to a stage."""
        with self._lock:
            if stage not in self._data:
                self._add_stage(stage)
            n = self._count[stage]
            self._data[stage][n % self.capacity] = value_ms
            self._count[stage] = n + 1

    def record_many(self, values_ms: Mapping[str, float]) -> None:
        """Add one sample to each named stage."""
        for stage, value in values_ms.items():
            self.record(stage, float(value))

    def values(self, stage: str) -> np.ndarray:
        """A copy of the kept samples of a stage (not in time order once wrapped)."""
        with self._lock:
            n = min(self._count.get(stage, 0), self.capacity)
            return self._data[stage][:n].copy() if n else np.empty(0)

    @property
    def stages(self) -> list[str]:
        return list(self._data)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {count, mean, p50, p95, p99, max}} in milliseconds."""
        return {stage: summarize(self.values(stage)) for stage in self.stages}


def format_table(summary: Mapping[str, Mapping[str, float]], title: str = "latency (ms)") -> str:
    """A plain-text table of a ``summary()`` (one row per stage)."""
    head = f"{title:<22}{'count':>8}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"
    lines = [head, "-" * len(head)]
    for stage, s in summary.items():
        lines.append(f"{stage:<22}{int(s['count']):>8}" + "".join(
            f"{s[k]:>9.2f}" if not math.isnan(s[k]) else f"{'-':>9}" for k in ("mean", "p50", "p95", "p99", "max")))
    return "\n".join(lines)


def write_json(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as indented JSON atomically (temp file in the same folder, then ``os.replace``); NaN → null."""
    def clean(o: object) -> object:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.generic):
            return clean(o.item())
        return o

    text = json.dumps(clean(data), indent=2, allow_nan=False) + "\n"
    with atomic_open(path, "w") as f:
        f.write(text)


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; ``platform.processor()``, often empty there, elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(packages: Iterable[str] = ("numpy",)) -> dict[str, Any]:
    """What a measurement ran on: CPU model and count, load average, platform, Python, and the installed version of
    each named distribution, read from package metadata (nothing is imported).

    A name may list alternatives, ``"opencv-python|opencv-contrib-python"``: the first installed one is reported
    under its own name; when none is, the first name maps to None.
    """
    versions: dict[str, str | None] = {}
    for entry in packages:
        names = entry.split("|")
        for name in names:
            try:
                versions[name] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            versions[names[0]] = None
    return {"cpu": _cpu_model(), "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version(), "versions": versions}
