"""Inference engines over a bundle: `open_engine(bundle_dir, backend, precision) -> Engine`.

Backends: `onnxruntime` (CPU; CUDA with onnxruntime-gpu), `tensorrt` (TensorRT 10/11 on NVIDIA GPUs) and `torch`
(the reference path, from the checkpoint in the bundle). `auto` picks the fastest one available for the precision:
TensorRT on a GPU, then ONNX Runtime (CUDA, then CPU), then torch. Importing this package imports no runtime.
"""
from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sttr.model.bundle import PRECISIONS, BundleInfo, InputSpec, read_bundle

from .base import BACKENDS, Engine, EngineInfo, softmax_with_temperature

__all__ = ["open_engine", "available_backends", "auto_backend_order", "Engine", "EngineInfo", "BACKENDS",
           "PRECISIONS", "softmax_with_temperature"]

log = logging.getLogger(__name__)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _gpu_visible() -> bool:
    """A CUDA GPU is usable, checked without importing torch (the live path stays torch-free on CPU boxes).

    Signs, cheapest first: an NVIDIA device node (`/dev/nvidia0`, `/dev/nvidiactl`), else `nvidia-smi` on PATH
    listing a GPU; then cuda-python's device count when it is installed. ONNX Runtime's CUDA/TensorRT execution
    providers alone are not enough (onnxruntime-gpu lists them on machines without a GPU).
    """
    if not (os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl") or _nvidia_smi_lists_gpu()):
        return False
    if _has("cuda"):
        from .cuda_buffers import _cudart

        try:
            err, count = _cudart().cudaGetDeviceCount()
        except (ImportError, AttributeError):
            return True
        if int(err) == 0:
            return count > 0
        # only cudaErrorNoDevice (100) says "no GPU"; any other error (e.g. cudaErrorInsufficientDriver: cuda-python
        # 13 on a CUDA 12 driver) is cuda-python's problem, and torch's CUDA may still serve the engine
        return int(err) != 100
    return True


def _nvidia_smi_lists_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def available_backends() -> list[str]:
    """Backends whose runtime is installed (not whether a GPU is present)."""
    return [b for b, mod in (("tensorrt", "tensorrt"), ("onnxruntime", "onnxruntime"), ("torch", "torch"))
            if _has(mod)]


def auto_backend_order(bundle: BundleInfo, precision: str) -> list[str]:
    """Backends `auto` tries, fastest first, among the installed ones that can run `precision` of `bundle`."""
    installed = set(available_backends())
    order = []
    has_model = precision in bundle.precisions
    if "tensorrt" in installed and has_model and _gpu_visible():
        order.append("tensorrt")
    if "onnxruntime" in installed and has_model:
        order.append("onnxruntime")
    torch_ok = precision == "fp32" or (precision == "fp16" and _gpu_visible())
    if "torch" in installed and bundle.has_checkpoints and torch_ok:
        order.append("torch")
    return order


def _backend_class(backend: str):
    if backend == "onnxruntime":
        from .onnxruntime_engine import OnnxRuntimeEngine
        return OnnxRuntimeEngine
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine
        return TensorRTEngine
    if backend == "torch":
        from .torch_engine import TorchEngine
        return TorchEngine
    raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")


def _options_of(cls) -> list[str]:
    """Keyword options a backend class takes (beyond bundle and precision)."""
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind == p.KEYWORD_ONLY]


def _check_options(opts: dict[str, Any], classes: list) -> None:
    """TypeError naming options no backend in `classes` takes (with `auto`, a misspelt `thread=1` would otherwise be
    dropped without a word) and the options they do take."""
    known = sorted({name for cls in classes for name in _options_of(cls)})
    unknown = sorted(k for k in opts if k not in known)
    if unknown:
        which = classes[0].backend if len(classes) == 1 else "any backend"
        raise TypeError(f"unknown engine option(s) {unknown} for {which}; options: {', '.join(known)}")


def open_engine(bundle_dir: str | Path | BundleInfo, backend: str = "auto", precision: str = "fp32", *,
                input_spec: InputSpec | None = None, **opts: Any) -> Engine:
    """Open an engine over a bundle (verified on load: sha256 of every file, format, input spec).

    Args:
        bundle_dir: The bundle folder (or an already read `BundleInfo`).
        backend: `auto`, `onnxruntime`, `tensorrt` or `torch`.
        precision: `fp32`, `fp16` or `int8` (the bundle must hold that model; torch runs fp32, or fp16 on CUDA).
        input_spec: What the caller will feed; a mismatch with the bundle raises `BundleMismatchError` naming
            each differing field.
        **opts: Backend options (`threads`, `device`, `max_batch`, `cache_dir`, `cuda_graph`, ...).

    Raises:
        ImportError: the backend's runtime is not installed (the message names the install command).
        BundleIntegrityError / BundleMismatchError / FileNotFoundError: see `sttr.model.bundle.read_bundle`.
        ValueError: unknown backend or precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if backend != "auto":
        cls = _backend_class(backend)
        _check_options(opts, [cls])
    else:
        _check_options(opts, [_backend_class(name) for name in BACKENDS])
    if input_spec is not None and not isinstance(input_spec, InputSpec):
        raise TypeError(f"input_spec must be an sttr.model.bundle.InputSpec (InputSpec.from_dict(d) makes one from "
                        f"a dict), got {type(input_spec).__name__}")
    bundle = bundle_dir if isinstance(bundle_dir, BundleInfo) else read_bundle(bundle_dir)
    if input_spec is not None:
        bundle.check_input(input_spec)
    if backend != "auto":
        return cls(bundle, precision, **opts)
    order = auto_backend_order(bundle, precision)
    if not order:
        bundle.model_path(precision)  # raises naming the missing model when that is the reason
        raise ImportError(f"no backend can run {precision} for {bundle.root}: install one with "
                          f"pip install 'sttr[live]' (ONNX Runtime)")
    errors = []
    for name in order:
        cls = _backend_class(name)
        accepted = inspect.signature(cls.__init__).parameters
        try:
            engine = cls(bundle, precision, **{k: v for k, v in opts.items() if k in accepted})
            log.info("auto backend: %s", name)
            return engine
        except Exception as err:  # noqa: BLE001 - auto tries the next backend whatever stopped this one (a
            # TensorRT/pybind TypeError, torch's ValueError for fp16 without CUDA, ...); the reasons are reported
            errors.append(f"{name}: {type(err).__name__}: {err}")
            log.warning("backend %s unavailable (%s); trying the next", name, err)
    raise RuntimeError(f"no backend could open {bundle.root} at {precision}: {'; '.join(errors)}")
