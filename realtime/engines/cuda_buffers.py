"""Device buffers, streams and CUDA graphs for the TensorRT backend, from torch (when it has CUDA) or cuda-python.

Both implementations offer the same small interface (`CudaRuntime`); nothing here is imported at `realtime` import
time, and each runtime is imported only by `open_cuda`.

CUDA's current device is per thread and TensorRT builds, deserializes and enqueues on the current device, so the
engine calls `activate()` before each of those (the live service runs inference in a worker thread, not in the thread
that opened the engine). Streams are non-blocking: a capture on them is not broken by another thread's work on the
legacy default stream.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from .base import missing_dependency

__all__ = ["CudaRuntime", "TorchCuda", "CudaPython", "open_cuda", "CUDA_PYTHON_INSTALL"]

log = logging.getLogger(__name__)

CUDA_PYTHON_INSTALL = ("pip install 'cuda-python>=12,<13' (CUDA 12 driver; 'cuda-python>=13' needs a CUDA 13 driver, "
                       "r580+)")
INSTALL = f"{CUDA_PYTHON_INSTALL}, or a CUDA build of torch"
_INSUFFICIENT_DRIVER = 35  # cudaErrorInsufficientDriver
_NO_DEVICE = 100  # cudaErrorNoDevice


class CudaRuntime:
    """The CUDA operations the TensorRT engine needs."""

    name = "?"
    device = 0

    def activate(self) -> None:
        """Make `device` this thread's current CUDA device."""
        raise NotImplementedError

    def device_identity(self) -> tuple[str, str]:
        """(GPU name, compute capability `major.minor`)."""
        raise NotImplementedError

    def stream(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        raise NotImplementedError

    def empty(self, shape: tuple[int, ...]) -> Any:
        """A float32 device buffer of `shape`."""
        raise NotImplementedError

    def pointer(self, buf: Any) -> int:
        raise NotImplementedError

    def upload(self, buf: Any, host: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def download(self, host: np.ndarray, buf: Any, stream: Any) -> None:
        raise NotImplementedError

    def synchronize(self, stream: Any) -> None:
        raise NotImplementedError

    def capture(self, stream: Any, work: Callable[[], None]) -> Any:
        """A CUDA graph of what `work` enqueues on `stream` (which must not be the default stream)."""
        raise NotImplementedError

    def replay(self, graph: Any, stream: Any) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Free what this runtime allocated itself (buffers, streams, graphs); the object is unusable afterwards."""


class TorchCuda(CudaRuntime):
    """Buffers are torch CUDA tensors; graphs are `torch.cuda.CUDAGraph`."""

    name = "torch"

    def __init__(self, torch, device: int) -> None:
        self.torch, self.device = torch, int(device)
        count = torch.cuda.device_count()
        if not 0 <= self.device < count:
            raise RuntimeError(f"CUDA device {self.device} does not exist ({count} visible)")
        self._dev = torch.device("cuda", self.device)

    def activate(self) -> None:
        self.torch.cuda.set_device(self._dev)

    def device_identity(self) -> tuple[str, str]:
        major, minor = self.torch.cuda.get_device_capability(self._dev)
        return self.torch.cuda.get_device_name(self._dev), f"{major}.{minor}"

    def stream(self):
        return self.torch.cuda.Stream(self._dev)

    def stream_handle(self, stream) -> int:
        return int(stream.cuda_stream)

    def empty(self, shape):
        return self.torch.empty(tuple(shape), dtype=self.torch.float32, device=self._dev)

    def pointer(self, buf) -> int:
        return int(buf.data_ptr())

    def upload(self, buf, host, stream) -> None:
        with self.torch.cuda.stream(stream):
            buf.copy_(self.torch.from_numpy(host), non_blocking=False)

    def download(self, host, buf, stream) -> None:
        with self.torch.cuda.stream(stream):
            host[...] = buf.cpu().numpy()

    def synchronize(self, stream) -> None:
        stream.synchronize()

    def capture(self, stream, work):
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(graph, stream=stream):
            work()
        return graph

    def replay(self, graph, stream) -> None:
        with self.torch.cuda.stream(stream):
            graph.replay()


def _native_handle_fn() -> Callable[[Any], int]:
    """cuda-python >= 13 deprecates `int(cuda_object)` for `cuda.bindings.utils.get_cuda_native_handle`."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int
    return lambda obj: int(get_cuda_native_handle(obj))


class CudaPython(CudaRuntime):
    """Buffers from `cudaMalloc`; graphs by stream capture (cuda-python's runtime bindings, which return a tuple
    `(cudaError_t, *results)` from every call)."""

    name = "cuda-python"

    def __init__(self, cudart, device: int) -> None:
        self.rt, self.device = cudart, int(device)
        self._owned: list[int] = []
        self._streams: list[Any] = []
        self._graphs: list[Any] = []
        self._handle = _native_handle_fn()
        self._check(self.rt.cudaSetDevice(self.device), "cudaSetDevice")

    def _check(self, result, what: str = "CUDA call"):
        err, *rest = result if isinstance(result, tuple) else (result,)
        code = int(err)
        if code != 0:
            raise RuntimeError(self._message(err, code, what))
        return rest[0] if len(rest) == 1 else (rest or None)

    def _message(self, err, code: int, what: str) -> str:
        try:
            name = self.rt.cudaGetErrorName(err)[1]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # noqa: BLE001 - the message must not fail
            name = str(err)
        msg = f"{what} failed: {name} ({code})"
        if code == _INSUFFICIENT_DRIVER:
            msg += (" - the NVIDIA driver is older than this cuda-python's CUDA runtime; on a CUDA 12 driver install "
                    "'cuda-python>=12,<13' (cuda-python 13 needs driver r580+)")
        elif code == _NO_DEVICE:
            msg += " - no CUDA GPU is visible to this process (CUDA_VISIBLE_DEVICES, container --gpus)"
        return msg

    def activate(self) -> None:
        self._check(self.rt.cudaSetDevice(self.device), "cudaSetDevice")

    def device_identity(self) -> tuple[str, str]:
        prop = self._check(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = prop.name
        name = name.decode(errors="replace") if isinstance(name, (bytes, bytearray)) else str(name)
        return name.split("\x00", 1)[0].strip(), f"{prop.major}.{prop.minor}"

    def stream(self):
        flags = getattr(self.rt, "cudaStreamNonBlocking", 1)
        stream = self._check(self.rt.cudaStreamCreateWithFlags(flags), "cudaStreamCreateWithFlags")
        self._streams.append(stream)
        return stream

    def stream_handle(self, stream) -> int:
        return self._handle(stream)

    def empty(self, shape):
        nbytes = max(4, int(np.prod(shape)) * 4)
        ptr = int(self._check(self.rt.cudaMalloc(nbytes), "cudaMalloc"))
        self._owned.append(ptr)
        return (ptr, nbytes)

    def pointer(self, buf) -> int:
        return buf[0]

    def upload(self, buf, host, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(buf[0], host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync")

    def download(self, host, buf, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, buf[0], host.nbytes, kind, stream), "cudaMemcpyAsync")

    def synchronize(self, stream) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def capture(self, stream, work):
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
        try:
            work()
        except BaseException:
            result = self.rt.cudaStreamEndCapture(stream)  # leave capture mode whatever happened
            if int(result[0]) == 0 and result[1] is not None:
                self.rt.cudaGraphDestroy(result[1])
            raise
        graph = self._check(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        try:
            exe = self._check(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            self.rt.cudaGraphDestroy(graph)  # the executable graph does not need its template
        self._graphs.append(exe)
        return exe

    def replay(self, graph, stream) -> None:
        self._check(self.rt.cudaGraphLaunch(graph, stream), "cudaGraphLaunch")

    def release(self) -> None:
        rt = self.rt
        for exe in getattr(self, "_graphs", []):
            rt.cudaGraphExecDestroy(exe)
        for stream in getattr(self, "_streams", []):
            rt.cudaStreamDestroy(stream)
        for ptr in getattr(self, "_owned", []):
            rt.cudaFree(ptr)
        self._graphs, self._streams, self._owned = [], [], []

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the bindings may be gone
            pass


def _cudart():
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6 (the only path in cuda-python 13)
        return runtime
    except ImportError:
        from cuda import cudart  # cuda-python < 12.6
        return cudart


def open_cuda(device: int = 0) -> CudaRuntime:
    """torch's CUDA when torch is installed with CUDA and a GPU is visible, else cuda-python.

    Raises:
        ImportError: neither is usable; the message names the install command.
        RuntimeError: a CUDA call failed (no such device, a driver too old for the runtime, ...).
    """
    try:
        import torch
        if torch.cuda.is_available():
            return TorchCuda(torch, device)
    except ImportError:
        pass
    try:
        cudart = _cudart()
    except ImportError as err:
        raise missing_dependency("CUDA device buffers (cuda-python, or torch with CUDA)", INSTALL, err) from err
    return CudaPython(cudart, device)
