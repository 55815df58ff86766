"""Device buffers, streams and CUDA graphs for the TensorRT backend, from torch (when it has CUDA) or cuda-python.

Both implementations offer the same small interface (`CudaRuntime`); nothing here is imported at `realtime` import
time, and each runtime is imported only by `open_cuda`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from .base import missing_dependency

__all__ = ["CudaRuntime", "TorchCuda", "CudaPython", "open_cuda"]

log = logging.getLogger(__name__)

INSTALL = "pip install cuda-python  (or a CUDA build of torch)"


class CudaRuntime:
    """The CUDA operations the TensorRT engine needs."""

    name = "?"
    device = 0

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
        """A CUDA graph of what `work` enqueues on `stream`."""
        raise NotImplementedError

    def replay(self, graph: Any, stream: Any) -> None:
        raise NotImplementedError


class TorchCuda(CudaRuntime):
    """Buffers are torch CUDA tensors; graphs are `torch.cuda.CUDAGraph`."""

    name = "torch"

    def __init__(self, torch, device: int) -> None:
        self.torch, self.device = torch, int(device)
        self._dev = torch.device("cuda", self.device)

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


class CudaPython(CudaRuntime):
    """Buffers from `cudaMalloc`; graphs by stream capture (cuda-python's runtime bindings)."""

    name = "cuda-python"

    def __init__(self, cudart, device: int) -> None:
        self.rt, self.device = cudart, int(device)
        self._check(self.rt.cudaSetDevice(self.device))
        self._owned: list[int] = []

    def _check(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def device_identity(self) -> tuple[str, str]:
        prop = self._check(self.rt.cudaGetDeviceProperties(self.device))
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return name, f"{prop.major}.{prop.minor}"

    def stream(self):
        return self._check(self.rt.cudaStreamCreate())

    def stream_handle(self, stream) -> int:
        return int(stream)

    def empty(self, shape):
        nbytes = int(np.prod(shape)) * 4
        ptr = int(self._check(self.rt.cudaMalloc(nbytes)))
        self._owned.append(ptr)
        return (ptr, nbytes)

    def pointer(self, buf) -> int:
        return buf[0]

    def upload(self, buf, host, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(buf[0], host.ctypes.data, host.nbytes, kind, stream))

    def download(self, host, buf, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, buf[0], host.nbytes, kind, stream))

    def synchronize(self, stream) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream))

    def capture(self, stream, work):
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode))
        work()
        graph = self._check(self.rt.cudaStreamEndCapture(stream))
        return self._check(self.rt.cudaGraphInstantiate(graph, 0))

    def replay(self, graph, stream) -> None:
        self._check(self.rt.cudaGraphLaunch(graph, stream))

    def __del__(self) -> None:
        for ptr in getattr(self, "_owned", []):
            self.rt.cudaFree(ptr)


def _cudart():
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
        return runtime
    except ImportError:
        from cuda import cudart  # older cuda-python
        return cudart


def open_cuda(device: int = 0) -> CudaRuntime:
    """torch's CUDA when torch is installed with CUDA and a GPU is visible, else cuda-python.

    Raises:
        ImportError: neither is usable; the message names the install command.
    """
    try:
        import torch
        if torch.cuda.is_available():
            return TorchCuda(torch, device)
    except ImportError:
        pass
    try:
        return CudaPython(_cudart(), device)
    except ImportError as err:
        raise missing_dependency("CUDA device buffers (cuda-python, or torch with CUDA)", INSTALL, err) from err
