"""The engine interface: a bundle's network run on windows (N, C, T, V, M) float32 -> logits (N, K) float32.

numpy only; each backend imports its runtime (onnxruntime, tensorrt, torch) when it is opened.
"""
from __future__ import annotations

import abc
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sttr.model.bundle import PRECISIONS, BundleInfo, BundleMismatchError, InputSpec

__all__ = ["Engine", "EngineInfo", "BACKENDS", "PRECISIONS", "softmax_with_temperature", "missing_dependency",
           "first_person_only", "route_single_person", "check_threads", "check_device"]

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "tensorrt", "torch")


def missing_dependency(what: str, install: str, err: BaseException | None = None) -> ImportError:
    """The ImportError raised when a backend's runtime is absent; the message names the install command."""
    msg = f"{what} is not installed; install it with: {install}"
    if err is not None:
        msg += f" ({type(err).__name__}: {err})"
    return ImportError(msg)


def check_threads(threads: int | None) -> int | None:
    """`threads` as an int (None or 0: the backend's default); ValueError for a negative or non-integer count."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise ValueError(f"threads must be a positive integer (or None / 0 for the default), got {threads!r}")
    return int(threads)


def check_device(device: str) -> int | None:
    """The CUDA device index of `device` ('cuda' is 0), None for 'auto' or 'cpu'; ValueError for anything else."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if not device.startswith("cuda"):
        return None
    return int(device.split(":")[1]) if ":" in device else 0


def softmax_with_temperature(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) over the last axis, float32, numerically stable."""
    z = np.asarray(logits, dtype=np.float32) / np.float32(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def first_person_only(windows: np.ndarray) -> np.ndarray:
    """Boolean (N,): True where every person slot but slot 0 of windows (N, C, T, V, M) is exactly zero."""
    if windows.shape[-1] < 2:
        return np.ones(len(windows), dtype=bool)
    return ~np.any(windows[..., 1:] != 0, axis=tuple(range(1, windows.ndim)))


def route_single_person(windows: np.ndarray, full, single) -> np.ndarray:
    """Logits of `windows` with `single(x)` on the windows whose slots 1.. are zero and `full(x)` on the others.

    `single` None: everything goes to `full`. A mixed batch is split and the logits put back in order.
    """
    if single is None:
        return full(windows)
    mask = first_person_only(windows)
    if mask.all():
        return single(windows)
    if not mask.any():
        return full(windows)
    a, b = single(windows[mask]), full(windows[~mask])
    out = np.empty((len(windows), a.shape[1]), dtype=np.float32)
    out[mask], out[~mask] = a, b
    return out


@dataclass(frozen=True)
class EngineInfo:
    """What an engine runs.

    Attributes:
        backend: `onnxruntime`, `tensorrt` or `torch`.
        precision: `fp32`, `fp16` or `int8`.
        device: Where it runs (e.g. `cpu`, `cuda:0 NVIDIA H100`).
        input: The bundle's input spec (C, T, V, M, layout, fps, preprocess).
        labels: Class names, logit order.
        temperature: Softmax temperature `probabilities` applies.
        bundle: The bundle folder.
        model_file: The file the engine was built from.
        details: Backend specifics (threads, providers, engine cache file, ...).
    """

    backend: str
    precision: str
    device: str
    input: InputSpec
    labels: tuple[str, ...]
    temperature: float
    bundle: str
    model_file: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


class Engine(abc.ABC):
    """Runs a bundle's network. Subclasses implement `_run` (and may override `close`).

    Args:
        bundle: The verified bundle.
        precision: `fp32`, `fp16` or `int8`.
    """

    backend: str = "?"

    def __init__(self, bundle: BundleInfo, precision: str) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.bundle = bundle
        self.precision = precision
        self._spec = bundle.input
        self._temperature = bundle.temperature
        self._closed = False

    @property
    @abc.abstractmethod
    def info(self) -> EngineInfo:
        """What this engine runs (backend, precision, device, input spec, labels, temperature)."""

    def _info(self, device: str, model_file: str, **details: Any) -> EngineInfo:
        return EngineInfo(backend=self.backend, precision=self.precision, device=device, input=self._spec,
                          labels=tuple(self.bundle.labels), temperature=self._temperature, bundle=str(self.bundle.root),
                          model_file=model_file, details=details)

    def check_windows(self, windows: np.ndarray) -> np.ndarray:
        """Validate (N, C, T, V, M) against the bundle; returns a C-contiguous float32 array.

        Any real-number array (float64, integers, a non-contiguous view) or nested list is taken and converted;
        complex, boolean, text or object values are refused (TypeError), as is a shape that does not fit the bundle
        (BundleMismatchError naming the expected shape).
        """
        try:
            windows = np.asarray(windows)
        except ValueError as err:  # a ragged nested list
            raise BundleMismatchError(f"expected windows (N, C, T, V, M) as one array, got a ragged sequence "
                                      f"({err})") from None
        spec = self._spec
        if windows.dtype.kind == "O":  # numbers held as Python objects (e.g. from pandas): take them if all are real
            try:
                windows = windows.astype(np.float32)
            except (TypeError, ValueError):
                pass
        if windows.dtype.kind not in "fiu":
            raise TypeError(f"expected windows of real numbers (float32), got dtype {windows.dtype}")
        if windows.ndim != 5:
            hint = "; one window? add the batch axis: windows[None]" if windows.ndim == 4 else ""
            raise BundleMismatchError(f"expected windows (N, C, T, V, M) = (N, {spec.C}, {spec.T or 'T'}, {spec.V}, "
                                      f"{spec.M}), got shape {windows.shape}{hint}")
        expected = (spec.C, spec.T, spec.V, spec.M)
        got = windows.shape[1:]
        if any(e is not None and e != g for e, g in zip(expected, got)) or windows.shape[0] < 1:
            raise BundleMismatchError(f"expected windows (N >= 1, C={spec.C}, T={spec.T or 'any'}, V={spec.V}, "
                                      f"M={spec.M}) for bundle {self.bundle.root}, got shape {windows.shape}")
        if spec.time_problem(got[1]):  # a dynamic-T graph whose network needs T to suit its strides
            raise BundleMismatchError(f"bundle {self.bundle.root} takes windows of {spec.describe_t()} frames (its "
                                      f"network's strides), got shape {windows.shape}")
        return np.ascontiguousarray(windows, dtype=np.float32)

    def run(self, windows: np.ndarray) -> np.ndarray:
        """Logits (N, K) float32 of windows (N, C, T, V, M) float32, normalised as the bundle's input spec says.

        A window holding NaN or infinity is not run: its row of logits is NaN (so are its `probabilities`) on every
        backend and precision, and the other windows' rows are unaffected. (Run, an INT8 graph would quantize NaN
        to a finite value and give a confident-looking answer.) Test rows with `np.isfinite(logits).all(axis=1)`.

        Raises:
            BundleMismatchError: a shape that does not fit the bundle. TypeError: non-real values.
            RuntimeError: the engine was closed.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new engine with open_engine()")
        x = self.check_windows(windows)
        finite = np.isfinite(x).all(axis=(1, 2, 3, 4))
        if finite.all():
            return self._run(x)
        out = np.full((len(x), self.bundle.num_classes), np.nan, dtype=np.float32)
        if finite.any():
            out[finite] = self._run(np.ascontiguousarray(x[finite]))
        return out

    @abc.abstractmethod
    def _run(self, windows: np.ndarray) -> np.ndarray:
        """Backend inference on validated windows."""

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-calibrated class probabilities softmax(logits / T), T from the bundle."""
        return softmax_with_temperature(logits, self._temperature)

    def warmup(self, batch: int = 1, iterations: int = 2) -> None:
        """Run zeros through the engine (first-call allocations, lazy initialisation)."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new engine with open_engine()")
        spec = self._spec
        T = spec.T or int(spec.preprocess.get("window") or 64)
        x = np.zeros((batch, spec.C, T, spec.V, spec.M), dtype=np.float32)
        for _ in range(iterations):
            self._run(x)

    def close(self) -> None:
        """Release the runtime's resources; `run` afterwards raises RuntimeError. Closing twice is harmless."""
        self._closed = True
        self._close()

    def _close(self) -> None:
        """Backend resources to release (subclasses)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bundle={str(self.bundle.root)!r}, precision={self.precision!r})"
