"""TensorRT backend (TensorRT 10 and 11): engines built from the bundle's ONNX files, cached on disk.

Precision lives in the ONNX graph (FP16 types, INT8 Q/DQ nodes), so the network is always strongly typed: TensorRT
10 gets `NetworkDefinitionCreationFlag.STRONGLY_TYPED`, TensorRT 11 is strongly typed by default and no longer has
the FP16/INT8 builder flags or the calibrator. One optimization profile covers batch 1..`max_batch`; the timing
cache is kept in a file per TensorRT version and GPU (a cache another GPU wrote is replaced, not fatal); serialized
engines are cached by GPU name + compute capability, TensorRT version, precision, profile and the sha256 of the ONNX
file, behind a small JSON header that is checked when loaded (a cached engine that no longer deserializes is rebuilt).
Batch 1 is replayed from a CUDA graph captured on an execution context of its own (a graph holds the shapes, tensor
addresses and context state of its capture; other batch sizes run on the other context), after one plain enqueue, on
a non-default stream; an engine that cannot be captured runs batch 1 without a graph. Device buffers come from torch
when it has CUDA, else from cuda-python.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sttr.model.atomic import atomic_write_bytes
from sttr.model.bundle import BundleInfo, InputSpec

from .base import Engine, EngineInfo, missing_dependency, route_single_person
from .cuda_buffers import CudaRuntime, open_cuda

__all__ = ["TensorRTEngine", "EngineCacheKey", "import_tensorrt", "profile_shapes", "default_cache_dir",
           "pack_engine", "unpack_engine", "INSTALL"]

log = logging.getLogger(__name__)

INSTALL = ("pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12 'cuda-python>=12,<13'  (CUDA 12 "
           "driver; with a CUDA 13 driver, r580+: pip install tensorrt cuda-python, the bare `tensorrt` being the "
           "CUDA 13 build)")
_MAGIC = b"STTRTRT1"


def import_tensorrt():
    """`tensorrt`, or ImportError naming the install command."""
    try:
        import tensorrt
    except ImportError as err:
        raise missing_dependency("TensorRT (the tensorrt backend)", INSTALL, err) from err
    return tensorrt


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/sttr/tensorrt` (default `~/.cache/sttr/tensorrt`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sttr" / "tensorrt"


def profile_shapes(spec: InputSpec, max_batch: int, opt_batch: int = 1,
                   frames: tuple[int, int, int] | None = None) -> tuple[tuple[int, ...], ...]:
    """(min, opt, max) input shapes of the optimization profile: batch 1..`max_batch`, C, T, V, M from the spec.

    Args:
        spec: The bundle's input spec.
        max_batch: Largest batch the engine accepts.
        opt_batch: Batch the kernels are tuned for (1 for live streams).
        frames: (min, opt, max) T when the graph's T is dynamic (spec.T None); default: the preprocess window.
    """
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch <= max_batch, got opt_batch={opt_batch}, max_batch={max_batch}")
    if spec.T is not None:
        t_min = t_opt = t_max = spec.T
    else:
        window = int(spec.preprocess.get("window") or 64)
        t_min, t_opt, t_max = frames or (window, window, window)
    return ((1, spec.C, t_min, spec.V, spec.M), (opt_batch, spec.C, t_opt, spec.V, spec.M),
            (max_batch, spec.C, t_max, spec.V, spec.M))


@dataclass(frozen=True)
class EngineCacheKey:
    """Everything a serialized engine depends on; its file name and header come from it."""

    onnx_sha256: str
    precision: str
    tensorrt: str
    gpu: str
    compute_capability: str
    profile: tuple[tuple[int, ...], ...]

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def file_name(self) -> str:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu).strip("-").lower() or "gpu"
        return (f"{self.onnx_sha256[:12]}-{self.precision}-b{self.profile[2][0]}-trt{self.tensorrt}-{gpu}"
                f"-sm{self.compute_capability.replace('.', '')}-{self.digest()[:8]}.engine")

    def timing_file_name(self) -> str:
        """The timing cache's file: tactic timings belong to one TensorRT build and one GPU model."""
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu).strip("-").lower() or "gpu"
        return f"timing-trt{self.tensorrt}-{gpu}-sm{self.compute_capability.replace('.', '')}.cache"

    def header(self) -> dict[str, Any]:
        return {"key": json.loads(json.dumps(asdict(self))), "digest": self.digest()}


def pack_engine(key: EngineCacheKey, engine_bytes: bytes) -> bytes:
    """Cache file content: magic, 4-byte little-endian header length, JSON header, serialized engine."""
    header = json.dumps(key.header(), sort_keys=True).encode()
    return _MAGIC + struct.pack("<I", len(header)) + header + bytes(engine_bytes)


def unpack_engine(data: bytes, key: EngineCacheKey) -> bytes | None:
    """The serialized engine in `data` when its header matches `key`, else None (stale or foreign file)."""
    if len(data) < len(_MAGIC) + 4 or not data.startswith(_MAGIC):
        return None
    (n,) = struct.unpack("<I", data[len(_MAGIC):len(_MAGIC) + 4])
    start = len(_MAGIC) + 4
    try:
        header = json.loads(data[start:start + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if header.get("digest") != key.digest():
        return None
    return data[start + n:]


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _create_network(trt, builder):
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if _major(trt.__version__) >= 11 or flag is None:
        return builder.create_network(0)  # TensorRT 11: strongly typed is the only kind
    return builder.create_network(1 << int(flag))


def _cuda_init_failed(trt, what: str, err: BaseException | None = None) -> RuntimeError:
    """The error when TensorRT cannot start on this machine's CUDA (most often a wheel of the wrong CUDA major)."""
    why = f" ({type(err).__name__}: {err})" if err is not None else ""
    return RuntimeError(f"TensorRT {trt.__version__} could not create its {what}{why}; its CUDA initialisation failed "
                        f"(see the TensorRT log above). The wheel's CUDA major must match the driver: {INSTALL}")


def _make(trt, factory, what: str, *args):
    """`factory(*args)`; a None result or the pybind error of a failed CUDA start becomes `_cuda_init_failed`."""
    try:
        made = factory(*args)
    except (TypeError, RuntimeError) as err:  # pybind11: "factory function returned nullptr"
        raise _cuda_init_failed(trt, what, err) from err
    if made is None:
        raise _cuda_init_failed(trt, what)
    return made


def _attach_timing_cache(config, path: Path):
    """Load the timing cache at `path` into `config` (a fresh one when the file is absent or not usable here: another
    GPU of the same compute capability, another TensorRT build, a damaged file). Returns the attached cache or None;
    it must stay alive until the engine is built."""
    blob = b""
    if path.is_file():
        try:
            blob = path.read_bytes()
        except OSError as err:
            log.warning("cannot read the TensorRT timing cache %s (%s); building with a fresh one", path, err)
    for data in ((blob, b"") if blob else (b"",)):
        try:
            cache = config.create_timing_cache(data)
        except Exception as err:  # noqa: BLE001 - TensorRT rejects a foreign or damaged cache by raising
            log.debug("create_timing_cache failed: %s", err)
            cache = None
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False) is not False:
            return cache
        if data:
            log.warning("TensorRT timing cache %s does not fit this GPU/TensorRT; building with a fresh one", path)
    log.warning("TensorRT timing cache unavailable; building without one")
    return None


def _build(trt, logger, onnx_path: Path, profile: tuple, timing_cache: Path, workspace: int | None) -> bytes:
    builder = _make(trt, trt.Builder, "builder", logger)
    network = _create_network(trt, builder)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if workspace:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    opt = builder.create_optimization_profile()
    opt.set_shape(network.get_input(0).name, *profile)
    config.add_optimization_profile(opt)
    cache = _attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    used = config.get_timing_cache() if cache is not None else None
    if used is not None:
        try:
            atomic_write_bytes(timing_cache, bytes(used.serialize()))
        except OSError as err:
            log.warning("cannot write the TensorRT timing cache %s: %s", timing_cache, err)
    return bytes(serialized)


class TensorRTEngine(Engine):
    """A TensorRT engine of the bundle's model of the requested precision.

    Args:
        bundle: The verified bundle.
        precision: `fp32` (model.onnx), `fp16` (model.fp16.onnx) or `int8` (model.int8.onnx).
        max_batch: Largest batch of the optimization profile (larger inputs run in chunks).
        opt_batch: Batch the kernels are tuned for.
        cache_dir: Where engines and the timing cache live (default `default_cache_dir()`).
        workspace: Builder workspace limit in bytes (None: TensorRT's default).
        cuda_graph: Replay batch 1 from a CUDA graph.
        device: CUDA device index.
        rebuild: Ignore a cached engine.
        single_person: Also build the bundle's single-person graph (`model.p1*.onnx`) when it has one for this
            precision, and route windows whose person slots 1.. are all zero to it.
        onnx_path: Build from this ONNX file of the bundle instead of the precision's model (used for the
            single-person graph).
    """

    backend = "tensorrt"

    def __init__(self, bundle: BundleInfo, precision: str = "fp16", *, max_batch: int = 8, opt_batch: int = 1,
                 cache_dir: str | Path | None = None, workspace: int | None = None, cuda_graph: bool = True,
                 device: int = 0, rebuild: bool = False, single_person: bool = True,
                 onnx_path: str | Path | None = None) -> None:
        super().__init__(bundle, precision)
        trt = import_tensorrt()
        self._trt = trt
        self.cuda: CudaRuntime = open_cuda(device)
        self.cuda.activate()  # the builder, the runtime and the engine live on the current device
        self.onnx_path = Path(onnx_path) if onnx_path is not None else bundle.model_path(precision)
        self.profile = profile_shapes(self._spec, max_batch, opt_batch)
        gpu, cc = self.cuda.device_identity()
        self.key = EngineCacheKey(bundle.file_sha256(self.onnx_path.name), precision, trt.__version__, gpu, cc,
                                  self.profile)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.engine_file = self.cache_dir / self.key.file_name()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = _make(trt, trt.Runtime, "runtime", self._logger)
        self.engine = self._load_engine(rebuild, workspace)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f"TensorRT could not create an execution context for {self.engine_file} "
                               f"(out of GPU memory?)")
        self._names()
        self._stream = self.cuda.stream()
        self._stream_handle = self.cuda.stream_handle(self._stream)
        self._buffers: dict[int, tuple[Any, Any, tuple[int, ...]]] = {}
        self._graph: _Batch1Graph | None = None
        self._use_graph = cuda_graph
        p1 = bundle.single_person_path(precision) if single_person and onnx_path is None else None
        self.single_person: TensorRTEngine | None = None
        if p1 is not None:
            self.single_person = TensorRTEngine(bundle, precision, max_batch=max_batch, opt_batch=opt_batch,
                                                cache_dir=cache_dir, workspace=workspace, cuda_graph=cuda_graph,
                                                device=device, rebuild=rebuild, single_person=False, onnx_path=p1)

    # ------------------------------------------------------------------------------------------ engine file
    def _load_engine(self, rebuild: bool, workspace: int | None):
        if not rebuild and self.engine_file.is_file():
            plan = unpack_engine(self.engine_file.read_bytes(), self.key)
            if plan is None:
                log.warning("cached TensorRT engine %s does not match (stale header); rebuilding", self.engine_file)
            else:
                engine = self._runtime.deserialize_cuda_engine(plan)
                if engine is not None:
                    log.info("TensorRT engine from cache %s", self.engine_file)
                    return engine
                log.warning("cached TensorRT engine %s does not deserialize (see the TensorRT log); rebuilding",
                            self.engine_file)
        engine = self._runtime.deserialize_cuda_engine(self._build_and_store(workspace))
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize the engine it just built from {self.onnx_path} "
                               f"(see the TensorRT log above)")
        return engine

    def _build_and_store(self, workspace: int | None) -> bytes:
        timing = self.cache_dir / self.key.timing_file_name()
        log.info("building TensorRT engine from %s (%s); this takes a while once", self.onnx_path, self.precision)
        plan = _build(self._trt, self._logger, self.onnx_path, self.profile, timing, workspace)
        atomic_write_bytes(self.engine_file, pack_engine(self.key, plan))
        return plan

    def _names(self) -> None:
        trt, engine = self._trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"expected one input and one output tensor, got inputs {inputs}, outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        for name in names:
            if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise RuntimeError(f"tensor {name!r} of {self.onnx_path.name} is {engine.get_tensor_dtype(name)}, "
                                   f"expected float32 input/output")

    @property
    def info(self) -> EngineInfo:
        return self._info(f"cuda:{self.cuda.device} {self.key.gpu} (sm {self.key.compute_capability})",
                          self.onnx_path.name, tensorrt=self.key.tensorrt, engine_file=str(self.engine_file),
                          profile=[list(s) for s in self.profile], cuda_graph=self._graph is not None,
                          cuda=self.cuda.name,
                          single_person_file=self.single_person.onnx_path.name if self.single_person else None)

    # ------------------------------------------------------------------------------------------ execution
    def _bind(self, context, shape: tuple[int, ...], buffers: tuple[Any, Any] | None = None):
        """Set the input shape of `context` and its tensor addresses: `buffers` (d_in, d_out), or buffers allocated
        once per batch size. Returns (d_in, d_out, output shape)."""
        if not context.set_input_shape(self.input_name, shape):
            raise RuntimeError(f"TensorRT rejected input shape {shape} (profile {self.profile})")
        out_shape = tuple(context.get_tensor_shape(self.output_name))
        if buffers is None:
            n = shape[0]
            if n not in self._buffers:
                self._buffers[n] = (self.cuda.empty(shape), self.cuda.empty(out_shape), out_shape)
            buffers = self._buffers[n][:2]
        d_in, d_out = buffers
        for name, buf in ((self.input_name, d_in), (self.output_name, d_out)):
            if not context.set_tensor_address(name, self.cuda.pointer(buf)):
                raise RuntimeError(f"TensorRT rejected the device address of tensor {name!r}")
        return d_in, d_out, out_shape

    def _execute(self, context) -> None:
        if not context.execute_async_v3(self._stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")

    def _finish(self, d_out, out_shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(out_shape, dtype=np.float32)
        self.cuda.download(out, d_out, self._stream)
        self.cuda.synchronize(self._stream)
        return out

    def _run_chunk(self, windows: np.ndarray) -> np.ndarray:
        if self._use_graph and windows.shape[0] == 1:
            graph = self._graph or self._capture(windows)
            if graph is not None:
                self.cuda.upload(graph.d_in, windows, self._stream)
                self.cuda.replay(graph.graph, self._stream)
                return self._finish(graph.d_out, graph.out_shape)
        d_in, d_out, out_shape = self._bind(self.context, windows.shape)
        self.cuda.upload(d_in, windows, self._stream)
        self._execute(self.context)
        return self._finish(d_out, out_shape)

    def _capture(self, window: np.ndarray) -> "_Batch1Graph | None":
        """The batch-1 CUDA graph on an execution context of its own (its shape and addresses never change), or None
        (logged; batch 1 then runs without a graph) when this engine cannot be captured."""
        context = self.engine.create_execution_context()
        try:
            if context is None:
                raise RuntimeError("no execution context (out of GPU memory?)")
            if not context.set_input_shape(self.input_name, window.shape):
                raise RuntimeError(f"input shape {window.shape} rejected")
            out_shape = tuple(context.get_tensor_shape(self.output_name))
            buffers = (self.cuda.empty(window.shape), self.cuda.empty(out_shape))
            d_in, d_out, out_shape = self._bind(context, window.shape, buffers)
            self.cuda.upload(d_in, window, self._stream)
            self._execute(context)  # TensorRT: enqueue once after the shapes are set, before capturing
            self.cuda.synchronize(self._stream)
            graph = self.cuda.capture(self._stream, lambda: self._execute(context))
        except Exception as err:  # noqa: BLE001 - any failure: run batch 1 the plain way
            log.warning("TensorRT engine %s: CUDA graph capture failed (%s); batch 1 runs without a graph",
                        self.onnx_path.name, err)
            self._use_graph = False
            return None
        self._graph = _Batch1Graph(graph, context, d_in, d_out, out_shape)
        log.info("TensorRT engine %s: batch 1 captured in a CUDA graph", self.onnx_path.name)
        return self._graph

    def _run_graph(self, windows: np.ndarray) -> np.ndarray:
        max_batch = self.profile[2][0]
        chunks = [self._run_chunk(windows[i:i + max_batch]) for i in range(0, len(windows), max_batch)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        self.cuda.activate()  # CUDA's current device is per thread: the caller's thread may not be the opener's
        single = self.single_person
        return route_single_person(windows, self._run_graph, None if single is None else single._run_graph)

    def close(self) -> None:
        super().close()  # the base class's own bookkeeping, if any
        self._release()

    def _release(self) -> None:
        """Free the GPU side; closing twice is harmless."""
        if self.single_person is not None:
            self.single_person.close()
            self.single_person = None
        self._graph = None  # the graph before its context, contexts before the engine (TensorRT's order)
        self._buffers.clear()
        self.context = None
        self.engine = None
        self.cuda.release()


@dataclass
class _Batch1Graph:
    graph: Any
    context: Any
    d_in: Any
    d_out: Any
    out_shape: tuple[int, ...]
