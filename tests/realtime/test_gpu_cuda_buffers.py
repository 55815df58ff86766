"""The cuda-python runtime of the TensorRT backend against a fake `cuda.bindings.runtime` (no GPU needed): every call
returns `(cudaError_t, *results)`, errors name the CUDA error (and the fix, for a driver too old for cuda-python
13), a failed capture leaves capture mode, graphs and streams are destroyed; and on a GPU (`-m gpu`) the real
bindings."""
from __future__ import annotations

import enum
import sys
import types

import numpy as np
import pytest

from sttr.realtime.engines import cuda_buffers as cb


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorStreamCaptureInvalidated = 901


class FakeRuntime(types.SimpleNamespace):
    """Records calls; `fail` maps a function name to the error it returns."""

    def __init__(self, fail=None):
        super().__init__(calls=[], fail=dict(fail or {}), memory={}, next_ptr=0x1000, capturing=False,
                         cudaStreamNonBlocking=1,
                         cudaMemcpyKind=types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2),
                         cudaStreamCaptureMode=types.SimpleNamespace(cudaStreamCaptureModeGlobal=0))

    def _call(self, name, *args, result=()):
        self.calls.append((name, args))
        err = self.fail.get(name, Err.cudaSuccess)
        return (err, *([None] * len(result) if err else result))

    def cudaGetErrorName(self, err):
        return (Err.cudaSuccess, Err(int(err)).name.encode())

    def cudaSetDevice(self, device):
        return self._call("cudaSetDevice", device)

    def cudaGetDeviceProperties(self, device):
        prop = types.SimpleNamespace(name=b"NVIDIA H100 80GB HBM3" + b"\x00" * 8, major=9, minor=0)
        return self._call("cudaGetDeviceProperties", device, result=(prop,))

    def cudaStreamCreateWithFlags(self, flags):
        return self._call("cudaStreamCreateWithFlags", flags, result=(types.SimpleNamespace(ptr=0x77),))

    def cudaStreamDestroy(self, stream):
        return self._call("cudaStreamDestroy", stream)

    def cudaMalloc(self, nbytes):
        self.next_ptr += 0x100
        self.memory[self.next_ptr] = bytearray(nbytes)
        return self._call("cudaMalloc", nbytes, result=(self.next_ptr,))

    def cudaFree(self, ptr):
        return self._call("cudaFree", ptr)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        return self._call("cudaMemcpyAsync", dst, src, nbytes, kind)

    def cudaStreamSynchronize(self, stream):
        return self._call("cudaStreamSynchronize", stream)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing = True
        return self._call("cudaStreamBeginCapture", stream, mode)

    def cudaStreamEndCapture(self, stream):
        self.capturing = False
        return self._call("cudaStreamEndCapture", stream, result=("graph",))

    def cudaGraphInstantiate(self, graph, flags):
        return self._call("cudaGraphInstantiate", graph, flags, result=("exec",))

    def cudaGraphDestroy(self, graph):
        return self._call("cudaGraphDestroy", graph)

    def cudaGraphExecDestroy(self, exe):
        return self._call("cudaGraphExecDestroy", exe)

    def cudaGraphLaunch(self, exe, stream):
        return self._call("cudaGraphLaunch", exe, stream)

    def names(self):
        return [c[0] for c in self.calls]


def test_identity_buffers_and_copies():
    rt = FakeRuntime()
    cuda = cb.CudaPython(rt, 0)
    assert cuda.device_identity() == ("NVIDIA H100 80GB HBM3", "9.0")
    stream = cuda.stream()
    assert rt.calls[-1] == ("cudaStreamCreateWithFlags", (1,))  # non-blocking
    buf = cuda.empty((2, 3))
    assert rt.calls[-1] == ("cudaMalloc", (24,)) and cuda.pointer(buf) == buf[0]
    host = np.zeros((2, 3), np.float32)
    cuda.upload(buf, host, stream)
    assert rt.calls[-1] == ("cudaMemcpyAsync", (buf[0], host.ctypes.data, 24, 1))
    cuda.download(host, buf, stream)
    assert rt.calls[-1] == ("cudaMemcpyAsync", (host.ctypes.data, buf[0], 24, 2))


def test_capture_instantiates_then_destroys_the_template_and_release_frees_everything():
    rt = FakeRuntime()
    cuda = cb.CudaPython(rt, 0)
    stream, buf = cuda.stream(), cuda.empty((4,))
    seen = []
    exe = cuda.capture(stream, lambda: seen.append(rt.capturing))
    assert exe == "exec" and seen == [True] and not rt.capturing
    assert rt.names()[-4:] == ["cudaStreamBeginCapture", "cudaStreamEndCapture", "cudaGraphInstantiate",
                               "cudaGraphDestroy"]
    cuda.replay(exe, stream)
    assert rt.calls[-1] == ("cudaGraphLaunch", ("exec", stream))
    cuda.release()
    assert {"cudaGraphExecDestroy", "cudaStreamDestroy", "cudaFree"} <= set(rt.names())
    assert ("cudaFree", (buf[0],)) in rt.calls


def test_work_failing_inside_capture_ends_the_capture():
    rt = FakeRuntime()
    cuda = cb.CudaPython(rt, 0)
    stream = cuda.stream()

    def work():
        raise RuntimeError("TensorRT execute_async_v3 failed")

    with pytest.raises(RuntimeError, match="execute_async_v3"):
        cuda.capture(stream, work)
    assert not rt.capturing and rt.names()[-2:] == ["cudaStreamEndCapture", "cudaGraphDestroy"]


def test_invalidated_capture_is_an_error_naming_the_cuda_error():
    rt = FakeRuntime(fail={"cudaStreamEndCapture": Err.cudaErrorStreamCaptureInvalidated})
    cuda = cb.CudaPython(rt, 0)
    with pytest.raises(RuntimeError, match=r"cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated \(901\)"):
        cuda.capture(cuda.stream(), lambda: None)


def test_driver_too_old_for_cuda_python_13_names_the_fix():
    rt = FakeRuntime(fail={"cudaSetDevice": Err.cudaErrorInsufficientDriver})
    with pytest.raises(RuntimeError) as info:
        cb.CudaPython(rt, 0)
    msg = str(info.value)
    assert "cudaErrorInsufficientDriver (35)" in msg and "'cuda-python>=12,<13'" in msg and "\n" not in msg


def test_activate_sets_the_device_of_the_calling_thread():
    rt = FakeRuntime()
    cuda = cb.CudaPython(rt, 1)
    cuda.activate()
    assert rt.calls.count(("cudaSetDevice", (1,))) == 2


def test_stream_handle_uses_the_native_handle_helper_when_cuda_python_has_it(monkeypatch):
    utils = types.ModuleType("cuda.bindings.utils")
    utils.get_cuda_native_handle = lambda obj: obj.ptr
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", types.ModuleType("cuda.bindings"))
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", utils)
    cuda = cb.CudaPython(FakeRuntime(), 0)
    assert cuda.stream_handle(cuda.stream()) == 0x77


def test_open_cuda_without_torch_or_cuda_python_names_both_installs(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(ImportError, match=r"cuda-python>=12,<13.*CUDA build of torch"):
        cb.open_cuda(0)


@pytest.mark.gpu
def test_real_cuda_python_round_trip_and_graph():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    cuda = cb.CudaPython(cb._cudart(), 0)
    name, cc = cuda.device_identity()
    assert name and cc.count(".") == 1
    stream, buf = cuda.stream(), cuda.empty((16,))
    x, y = np.arange(16, dtype=np.float32), np.zeros(16, np.float32)
    cuda.upload(buf, x, stream)
    graph = cuda.capture(stream, lambda: None)  # an empty graph: capture, instantiate and launch work
    cuda.replay(graph, stream)
    cuda.download(y, buf, stream)
    cuda.synchronize(stream)
    np.testing.assert_array_equal(x, y)
    cuda.release()
