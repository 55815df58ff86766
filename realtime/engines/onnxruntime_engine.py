"""ONNX Runtime backend: CPU, or CUDA when `onnxruntime-gpu` is installed and a GPU is visible."""
from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import numpy as np

from sttr.model.bundle import BundleInfo

from .base import Engine, EngineInfo, check_device, check_threads, missing_dependency, route_single_person
from .uint8_activations import uint8_activation_model

__all__ = ["OnnxRuntimeEngine", "import_onnxruntime", "default_threads", "cuda_available"]

log = logging.getLogger(__name__)

INSTALL = "pip install 'sttr[live]'  (or: pip install onnxruntime-gpu, for CUDA)"


def import_onnxruntime():
    """`onnxruntime`, or ImportError naming the install command."""
    try:
        import onnxruntime
    except ImportError as err:
        raise missing_dependency("ONNX Runtime (the onnxruntime backend)", INSTALL, err) from err
    return onnxruntime


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may run on (at most 8; more rarely helps a model this size)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def cuda_available() -> bool:
    """True when ONNX Runtime has the CUDA execution provider (onnxruntime-gpu)."""
    try:
        return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
    except ImportError:
        return False


class OnnxRuntimeEngine(Engine):
    """An ONNX Runtime session over the bundle's model of the requested precision.

    Args:
        bundle: The verified bundle.
        precision: `fp32`, `fp16` or `int8` (the bundle must hold that model).
        device: `auto` (CUDA when available), `cpu` or `cuda` (`cuda:N`).
        threads: Intra-op threads (default `default_threads()`).
        providers: Explicit execution providers (overrides `device`).
        single_person: Route windows whose person slots 1.. are all zero to the bundle's single-person graph
            (`model.p1*.onnx`, same logits at about 1/M of the cost) when it has one for this precision.
        spinning: Let idle intra-op threads spin-wait (ONNX Runtime's default); off by default because spinning
            threads steal the cores of the rest of the pipeline on small shared CPUs.
        batch1_session: Also open each graph with its batch dimension fixed to 1 and run single windows there (the
            live path's case); None (default): for INT8 only. With every shape known, ONNX Runtime folds the shape
            arithmetic of the reshapes away and plans memory once: S-TR's INT8 engine ran single windows 5-6 %
            faster on the 2-core test CPU with one person (15.54 -> 14.65, 15.02 -> 14.23 ms) and 3 % with two
            (28.8 -> 28.0 ms), but its FP32 and FP16 graphs 10 % slower (ONNX Runtime then lays out their float
            convolutions differently). Costs a second session per graph.
    """

    backend = "onnxruntime"

    def __init__(self, bundle: BundleInfo, precision: str = "fp32", *, device: str = "auto",
                 threads: int | None = None, providers: Sequence[Any] | None = None, single_person: bool = True,
                 spinning: bool = False, batch1_session: bool | None = None) -> None:
        super().__init__(bundle, precision)
        ort = import_onnxruntime()
        self.model_file = bundle.model_path(precision)
        self.p1_file = bundle.single_person_path(precision) if single_person else None
        self.threads = check_threads(threads) or default_threads()
        self.spinning = bool(spinning)
        self.providers = list(providers) if providers is not None else self._providers(ort, device)
        self._uint8_forms: dict[Any, tuple[bytes, int] | None] = {}  # file -> its uint8-activation form
        if batch1_session is None:
            batch1_session = precision == "int8"
        self.session = _Sessions(self, ort, self.model_file, batch1_session)
        self.p1_session = _Sessions(self, ort, self.p1_file, batch1_session) if self.p1_file is not None else None
        self._uint8_forms.clear()  # the sessions hold their graphs
        self.input_name = self.session.any.get_inputs()[0].name
        self.output_name = self.session.any.get_outputs()[0].name
        self.active_providers = self.session.any.get_providers()  # kept for `info` after close()
        self._batch1 = self.session.batch1 is not None
        self._check_cuda_started(device if providers is None else None)
        log.info("onnxruntime engine %s%s on %s", self.model_file.name,
                 f" (+ {self.p1_file.name})" if self.p1_file else "", self.session.any.get_providers())

    def _options(self, ort, batch1_dim: str | None = None):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        opts.log_severity_level = 3
        if batch1_dim is not None:
            opts.add_free_dimension_override_by_name(batch1_dim, 1)
        return opts

    def _session(self, ort, path, opts):
        """A session over `path`; an INT8 graph on the CPU provider is given uint8 activations first (exact; see
        `uint8_activations`; done once per file), so that every quantized conv runs as an integer kernel."""
        first = self.providers[0] if self.providers else "CPUExecutionProvider"
        first = first[0] if isinstance(first, tuple) else first
        if self.precision == "int8" and first == "CPUExecutionProvider":
            if path not in self._uint8_forms:
                self._uint8_forms[path] = uint8_activation_model(path)
            rewritten = self._uint8_forms[path]
            if rewritten is not None:
                model, changed = rewritten
                try:
                    session = ort.InferenceSession(model, opts, providers=self.providers)
                except Exception as err:  # noqa: BLE001 - a graph this rewrite does not fit: run the file as it is
                    log.warning("%s: the uint8-activation form did not load (%s); running the file as it is",
                                path.name, str(err).splitlines()[0] if str(err) else type(err).__name__)
                    self._uint8_forms[path] = None
                else:
                    log.debug("%s: %d int8 activation Q/DQ nodes given uint8 zero points", path.name, changed)
                    return session
        return ort.InferenceSession(str(path), opts, providers=self.providers)

    def _check_cuda_started(self, device: str | None) -> None:
        """onnxruntime-gpu lists the CUDA provider even where it cannot start (no CUDA 12 / cuDNN 9 libraries, no
        GPU) and then runs on the CPU without an error: say so, and refuse when CUDA was asked for by name."""
        wanted = any((p[0] if isinstance(p, tuple) else p) == "CUDAExecutionProvider" for p in self.providers)
        active = self.active_providers
        if not wanted or (active and active[0] == "CUDAExecutionProvider"):
            return
        msg = ("ONNX Runtime's CUDA execution provider did not start (CUDA 12 / cuDNN 9 libraries missing, or no GPU); "
               "install them, e.g. pip install nvidia-cudnn-cu12 and call onnxruntime.preload_dlls() first, or import "
               "a CUDA build of torch before opening the engine")
        if device is not None and device.startswith("cuda"):
            raise RuntimeError(msg)
        log.warning("%s; running on %s", msg, active)

    @staticmethod
    def _providers(ort, device: str) -> list[Any]:
        available = ort.get_available_providers()
        index = check_device(device)
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if index is not None:
            if "CUDAExecutionProvider" not in available:
                raise missing_dependency("ONNX Runtime's CUDA execution provider", "pip install onnxruntime-gpu")
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]

    @property
    def info(self) -> EngineInfo:
        active = self.active_providers
        device = "cuda" if active and active[0] == "CUDAExecutionProvider" else "cpu"
        return self._info(device, self.model_file.name, providers=active, intra_op_threads=self.threads,
                          spinning=self.spinning, single_person_file=self.p1_file.name if self.p1_file else None,
                          batch1_session=self._batch1)

    def _session_run(self, sessions: "_Sessions", windows: np.ndarray) -> np.ndarray:
        session = sessions.batch1 if len(windows) == 1 and sessions.batch1 is not None else sessions.any
        try:
            out = session.run([self.output_name], {self.input_name: windows})[0]
        except Exception as err:  # noqa: BLE001 - ONNX Runtime's own exception classes (Fail, InvalidArgument, ...)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:400]
            hint = f"; this bundle takes windows of {self._spec.describe_t()} frames" if self._spec.T is None else ""
            raise RuntimeError(f"ONNX Runtime could not run {sessions.path.name} of {self.bundle.root} on windows of "
                               f"shape {windows.shape}{hint}: {first}") from err
        return np.asarray(out, dtype=np.float32)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        single = self.p1_session
        return route_single_person(windows, lambda x: self._session_run(self.session, x),
                                   None if single is None else (lambda x: self._session_run(single, x)))

    def _close(self) -> None:
        self.session = self.p1_session = None


class _Sessions:
    """One graph's sessions: `any` for every batch size, `batch1` (or None) with the batch dimension fixed to 1."""

    def __init__(self, engine: OnnxRuntimeEngine, ort, path, batch1: bool) -> None:
        self.path = path
        self.any = engine._session(ort, path, engine._options(ort))
        self.batch1 = None
        dim = self.any.get_inputs()[0].shape[0]
        if batch1 and isinstance(dim, str) and dim:  # a named, dynamic batch dimension
            self.batch1 = engine._session(ort, path, engine._options(ort, dim))
