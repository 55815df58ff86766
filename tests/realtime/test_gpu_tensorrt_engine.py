"""TensorRTEngine end to end on CPU, with a fake `tensorrt` module and a fake CUDA runtime (no GPU needed).

The fakes keep the semantics that matter: an execution context holds one input shape and one pair of tensor addresses
at a time; a CUDA graph replays what was captured, reading the context's state at replay time (as TensorRT's
kernels read context-owned device memory), so a graph whose context was re-shaped since its capture computes wrong
results; capture is only legal after one plain enqueue with the current shapes (TensorRT allocates lazily) and on a
non-default stream; CUDA's current device is per thread.
"""
from __future__ import annotations

import threading
import types
from pathlib import Path

import numpy as np
import pytest

from sttr.model.bundle import InputSpec
from sttr.realtime.engines import tensorrt_engine as te
from sttr.realtime.engines.cuda_buffers import CudaRuntime

SPEC = InputSpec(C=3, T=8, V=5, M=2, layout="ntu25", preprocess={"window": 8})
K = 4
WEIGHTS = np.random.default_rng(0).normal(size=(3 * 8 * 5 * 2, K)).astype(np.float32)


def _logits(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1) @ WEIGHTS


class FakeCuda(CudaRuntime):
    name = "fake"

    def __init__(self, device: int = 0) -> None:
        self.device = device
        self.memory: dict[int, np.ndarray] = {}
        self.capturing: list | None = None
        self.active: set[int] = set()  # thread ids where `device` is current
        self.released = False

    def activate(self):
        self.active.add(threading.get_ident())

    def require_active(self):
        assert threading.get_ident() in self.active, "CUDA call from a thread whose current device was not set"

    def device_identity(self):
        return "NVIDIA H200", "9.0"

    def stream(self):
        return types.SimpleNamespace(handle=7)

    def stream_handle(self, stream):
        return stream.handle

    def empty(self, shape):
        buf = np.full(shape, np.nan, dtype=np.float32)
        self.memory[id(buf)] = buf
        return buf

    def pointer(self, buf):
        return id(buf)

    def upload(self, buf, host, stream):
        assert self.capturing is None
        buf[...] = host

    def download(self, host, buf, stream):
        assert self.capturing is None
        host[...] = buf

    def synchronize(self, stream):
        assert self.capturing is None

    def capture(self, stream, work):
        assert stream.handle != 0, "capture on the default stream"
        self.capturing = []
        try:
            work()
            return list(self.capturing)
        finally:
            self.capturing = None

    def replay(self, graph, stream):
        for launch in graph:
            launch()

    def release(self):
        self.released = True


class FakeContext:
    def __init__(self, engine):
        self.engine, self.cuda = engine, engine.cuda
        self.shape = None
        self.addresses: dict[str, int] = {}
        self.ready_shape = None  # the input shape of the last plain enqueue (TensorRT's internal state)

    def set_input_shape(self, name, shape):
        assert name == "x"
        lo, hi = self.engine.profile[0][0], self.engine.profile[2][0]
        if not lo <= shape[0] <= hi:
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        assert name == "logits"
        return (self.shape[0], K)

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def _launch(self):
        x = self.cuda.memory[self.addresses["x"]]
        out = self.cuda.memory[self.addresses["logits"]]
        # the kernels see the context's internal state, which only a plain enqueue brings up to date with
        # set_input_shape (TensorRT: "enqueueV3() once after an input shape change to update internal state")
        assert x.shape == self.ready_shape, f"graph replayed after its context was enqueued at {self.ready_shape}"
        out[...] = _logits(x)

    def execute_async_v3(self, stream_handle):
        self.cuda.require_active()
        assert stream_handle == 7
        self.engine.enqueues += 1
        if self.cuda.capturing is not None:
            assert self.ready_shape == self.shape, "captured without a plain enqueue at these shapes first"
            self.cuda.capturing.append(self._launch)
        else:
            self.ready_shape = self.shape
            self._launch()
        return True


class FakeEngine:
    num_io_tensors = 2

    def __init__(self, cuda, profile):
        self.cuda, self.profile, self.contexts, self.enqueues = cuda, profile, [], 0

    def get_tensor_name(self, i):
        return ("x", "logits")[i]

    def get_tensor_mode(self, name):
        return "in" if name == "x" else "out"

    def get_tensor_dtype(self, name):
        return "float"

    def create_execution_context(self):
        self.contexts.append(FakeContext(self))
        return self.contexts[-1]


class FakeTRT(types.SimpleNamespace):
    """A `tensorrt` module: Runtime deserializes the plans `_build` (patched) writes."""

    def __init__(self, cuda, version="10.13.0.35"):
        fake = self

        class Runtime:
            def __init__(self, logger):
                cuda.require_active()

            def deserialize_cuda_engine(self, plan):
                fake.deserialized.append(bytes(plan))
                if not bytes(plan).startswith(b"plan"):
                    return None
                fake.engine = FakeEngine(cuda, fake.profile)
                return fake.engine

        super().__init__(__version__=version, Runtime=Runtime, Logger=_Logger,
                         TensorIOMode=types.SimpleNamespace(INPUT="in", OUTPUT="out"),
                         DataType=types.SimpleNamespace(FLOAT="float"), deserialized=[], engine=None, profile=None)


class _Logger:
    WARNING = 2

    def __init__(self, level):
        self.level = level


class FakeBundle:
    def __init__(self, root: Path):
        self.root, self.input, self.temperature, self.labels = root, SPEC, 1.0, [f"c{i}" for i in range(K)]

    def model_path(self, precision):
        return self.root / f"model.{precision}.onnx"

    def single_person_path(self, precision):
        return None

    def file_sha256(self, name):
        return "ab" * 32


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    cuda = FakeCuda()
    trt = FakeTRT(cuda)
    builds = []

    def fake_build(trt_, logger, onnx_path, profile, timing, workspace):
        cuda.require_active()
        trt.profile = profile
        builds.append((onnx_path, profile, timing))
        return b"plan-" + str(len(builds)).encode()

    monkeypatch.setattr(te, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(te, "open_cuda", lambda device=0: cuda)
    monkeypatch.setattr(te, "_build", fake_build)
    return types.SimpleNamespace(cuda=cuda, trt=trt, builds=builds, bundle=FakeBundle(tmp_path), cache=tmp_path / "c")


def _engine(f, **kw):
    return te.TensorRTEngine(f.bundle, "fp16", max_batch=4, cache_dir=f.cache, **kw)


def _windows(n, seed=1):
    return np.random.default_rng(seed).normal(size=(n, SPEC.C, SPEC.T, SPEC.V, SPEC.M)).astype(np.float32)


def test_batch1_graph_survives_other_batch_sizes_on_its_own_context(fakes):
    engine = _engine(fakes)
    x = _windows(7)
    np.testing.assert_allclose(engine.run(x[:1]), _logits(x[:1]), rtol=1e-5)  # captures the graph
    assert engine.info.details["cuda_graph"]
    np.testing.assert_allclose(engine.run(x[:3]), _logits(x[:3]), rtol=1e-5)  # eager context now holds batch 3
    np.testing.assert_allclose(engine.run(x), _logits(x), rtol=1e-5)  # 7 > max_batch 4: chunks of 4 and 3
    for i in range(3):  # replays: the graph's context was never re-shaped
        np.testing.assert_allclose(engine.run(x[i:i + 1]), _logits(x[i:i + 1]), rtol=1e-5)
    graph_context = engine._graph.context
    assert graph_context is not engine.context and graph_context.shape == (1, 3, 8, 5, 2)
    enqueues = fakes.trt.engine.enqueues
    engine.run(x[:1])
    assert fakes.trt.engine.enqueues == enqueues  # a replay, no enqueue


def test_capture_failure_falls_back_to_plain_batch1(fakes, caplog):
    def broken(stream, work):
        raise RuntimeError("cudaErrorStreamCaptureUnsupported")

    fakes.cuda.capture = broken
    engine = _engine(fakes)
    x = _windows(2)
    np.testing.assert_allclose(engine.run(x[:1]), _logits(x[:1]), rtol=1e-5)
    np.testing.assert_allclose(engine.run(x[1:]), _logits(x[1:]), rtol=1e-5)
    assert not engine.info.details["cuda_graph"] and "capture failed" in caplog.text


def test_no_graph_when_disabled(fakes):
    engine = _engine(fakes, cuda_graph=False)
    x = _windows(1)
    np.testing.assert_allclose(engine.run(x), _logits(x), rtol=1e-5)
    assert engine._graph is None and len(fakes.trt.engine.contexts) == 1


def test_run_from_another_thread_makes_the_device_current_there(fakes):
    engine = _engine(fakes)
    x, out, errors = _windows(2), {}, []

    def work():
        try:
            out["y"] = engine.run(x)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors, errors
    np.testing.assert_allclose(out["y"], _logits(x), rtol=1e-5)


def test_engine_cache_reused_and_undeserializable_cache_rebuilt(fakes, caplog):
    first = _engine(fakes)
    assert len(fakes.builds) == 1 and first.engine_file.is_file()
    timing = fakes.builds[0][2]
    assert timing.parent == fakes.cache and timing.name == "timing-trt10.13.0.35-nvidia-h200-sm90.cache"
    assert fakes.builds[0][1] == ((1, 3, 8, 5, 2), (1, 3, 8, 5, 2), (4, 3, 8, 5, 2))
    first.close()
    first.close()  # twice: harmless
    assert fakes.cuda.released
    again = _engine(fakes)
    assert len(fakes.builds) == 1 and again.engine_file == first.engine_file  # from the cache
    # same key, but a plan this TensorRT no longer accepts: rebuilt, not a hard error
    key = again.key
    again.engine_file.write_bytes(te.pack_engine(key, b"garbage"))
    third = _engine(fakes)
    assert len(fakes.builds) == 2 and "does not deserialize" in caplog.text
    assert te.unpack_engine(third.engine_file.read_bytes(), key) == b"plan-2"


def test_builder_that_cannot_start_cuda_names_the_cuda_major(fakes):
    def runtime(logger):
        raise TypeError("pybind11::init(): factory function returned nullptr")

    fakes.trt.Runtime = runtime
    with pytest.raises(RuntimeError, match=r"could not create its runtime.*tensorrt-cu12"):
        _engine(fakes)


# ------------------------------------------------------------------------------------------ timing cache
class _Config:
    def __init__(self, accept=lambda blob: True, raise_on=()):
        self.accept, self.raise_on, self.attached = accept, raise_on, None

    def create_timing_cache(self, blob):
        if bytes(blob) in self.raise_on:
            raise RuntimeError("invalid timing cache")
        return types.SimpleNamespace(blob=bytes(blob))

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False
        if not self.accept(cache.blob):
            return False
        self.attached = cache
        return True


def test_timing_cache_loaded_when_it_fits(tmp_path):
    path = tmp_path / "t.cache"
    path.write_bytes(b"good")
    config = _Config()
    assert te._attach_timing_cache(config, path).blob == b"good"


@pytest.mark.parametrize("config", [_Config(accept=lambda blob: blob == b""), _Config(raise_on=(b"foreign",))])
def test_foreign_or_damaged_timing_cache_is_replaced_by_a_fresh_one(tmp_path, config, caplog):
    path = tmp_path / "t.cache"
    path.write_bytes(b"foreign")
    assert te._attach_timing_cache(config, path).blob == b""
    assert config.attached.blob == b"" and "does not fit" in caplog.text


def test_build_survives_a_rejected_timing_cache_and_writes_the_new_one(tmp_path):
    calls = []

    class Config(_Config):
        def get_timing_cache(self):
            return types.SimpleNamespace(serialize=lambda: b"new-timings")

        def set_memory_pool_limit(self, *a):
            calls.append("workspace")

        def add_optimization_profile(self, p):
            calls.append("profile")

    profile = types.SimpleNamespace(set_shape=lambda *a: calls.append(("set_shape", a)))
    builder = types.SimpleNamespace(create_network=lambda flags: network, create_builder_config=lambda: config,
                                    create_optimization_profile=lambda: profile,
                                    build_serialized_network=lambda n, c: b"plan")
    network = types.SimpleNamespace(get_input=lambda i: types.SimpleNamespace(name="x"))
    parser = types.SimpleNamespace(parse_from_file=lambda path: True, num_errors=0)
    config = Config(accept=lambda blob: blob == b"")
    trt = types.SimpleNamespace(__version__="11.0.0", NetworkDefinitionCreationFlag=types.SimpleNamespace(),
                                Builder=lambda logger: builder, OnnxParser=lambda n, logger: parser,
                                MemoryPoolType=types.SimpleNamespace(WORKSPACE="ws"))
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"from-another-gpu")
    assert te._build(trt, None, tmp_path / "m.onnx", te.profile_shapes(SPEC, 2), timing, None) == b"plan"
    assert timing.read_bytes() == b"new-timings"


def test_builder_returning_none_is_a_clear_error():
    trt = types.SimpleNamespace(__version__="10.13.0", Builder=lambda logger: None)
    with pytest.raises(RuntimeError, match=r"TensorRT 10\.13\.0 could not create its builder.*tensorrt-cu12"):
        te._build(trt, None, Path("m.onnx"), te.profile_shapes(SPEC, 2), Path("t.cache"), None)
