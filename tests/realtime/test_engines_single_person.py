"""realtime.engines: routing of one-person windows to the bundle's p1 graph, session options, torch-free auto."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from sttr.model.bundle import InputSpec, read_bundle, write_bundle_json
from sttr.realtime.engines import open_engine
from sttr.realtime.engines.base import first_person_only, route_single_person

from ._tiny_onnx import C, K, M, T, V, tiny_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

PRE = {"layout": "ntu25", "window": T, "persons": M, "bones": "none"}


def _tiny_onnx(path, seed):
    """Each graph's output is known to the test: logits = mean over (T, V, M) of x @ W + b."""
    w, b = tiny_onnx(path, seed)
    return lambda x: x.mean(axis=(2, 3, 4)) @ w + b


@pytest.fixture
def p1_bundle(tmp_path):
    """A bundle whose p1 graph differs from the full one, so the test sees which graph ran each window."""
    full, p1 = _tiny_onnx(tmp_path / "model.onnx", 0), _tiny_onnx(tmp_path / "model.p1.onnx", 1)
    _tiny_onnx(tmp_path / "model.fp16.onnx", 0)  # a float32 stand-in: only its selection matters here
    spec = InputSpec(C=C, T=T, V=V, M=M, layout="ntu25", fps=30.0, preprocess=PRE)
    write_bundle_json(tmp_path, {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": K},
                                 "labels": list("abcd"), "temperature": 1.0, "checkpoint": None,
                                 "models": {"fp32": "model.onnx", "p1.fp32": "model.p1.onnx",
                                            "fp16": "model.fp16.onnx"}})
    return tmp_path, full, p1


def _windows(n, one_person, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, C, T, V, M)).astype(np.float32)
    x[np.asarray(one_person), ..., 1:] = 0.0
    return x


def test_first_person_only_flags_windows_with_zero_slots_after_the_first():
    x = _windows(4, [True, False, True, False])
    x[3, ..., 1] = 0.0
    x[3, 0, 5, 7, 1] = 1e-6  # one non-zero coordinate makes slot 1 present
    assert first_person_only(x).tolist() == [True, False, True, False]


def test_route_single_person_splits_mixed_batches_in_order():
    x = _windows(5, [True, False, True, True, False])
    out = route_single_person(x, lambda a: np.full((len(a), 2), 7.0, np.float32),
                              lambda a: np.full((len(a), 2), 1.0, np.float32))
    assert out[:, 0].tolist() == [1.0, 7.0, 1.0, 1.0, 7.0]


def test_onnxruntime_engine_routes_one_person_windows_to_p1_graph(p1_bundle):
    root, full, p1 = p1_bundle
    engine = open_engine(root, backend="onnxruntime", threads=1)
    assert engine.info.details["single_person_file"] == "model.p1.onnx"
    assert engine.info.details["spinning"] is False
    for mask in ([True], [False], [True, True, True], [False, True, False, True]):
        x = _windows(len(mask), mask, seed=len(mask))
        want = np.where(np.asarray(mask)[:, None], p1(x), full(x))
        np.testing.assert_allclose(engine.run(x), want, rtol=1e-5, atol=1e-5)


def test_onnxruntime_engine_runs_single_windows_on_a_batch1_session(p1_bundle):
    # each graph also gets a session with the batch fixed to 1 (shapes known: faster); single windows run there,
    # batches on the dynamic session; the logits are those of the graphs either way
    root, full, p1 = p1_bundle
    assert open_engine(root, backend="onnxruntime", threads=1).session.batch1 is None  # FP32: off unless asked
    engine = open_engine(root, backend="onnxruntime", threads=1, batch1_session=True)
    assert engine.info.details["batch1_session"] is True
    calls = []
    for sessions, name in ((engine.session, "full"), (engine.p1_session, "p1")):
        for attr in ("any", "batch1"):
            real = getattr(sessions, attr)
            assert real.get_inputs()[0].shape[0] == ("N" if attr == "any" else 1)

            class Spy:
                def __init__(self, real, tag):
                    self.real, self.tag = real, tag

                def run(self, *args, **kwargs):
                    calls.append(self.tag)
                    return self.real.run(*args, **kwargs)

            setattr(sessions, attr, Spy(real, f"{name}.{attr}"))
    for mask, want_calls in (([True], ["p1.batch1"]), ([False], ["full.batch1"]), ([True, True], ["p1.any"]),
                             ([True, False], ["p1.batch1", "full.batch1"]), ([False, False], ["full.any"])):
        calls.clear()
        x = _windows(len(mask), mask, seed=len(mask))
        want = np.where(np.asarray(mask)[:, None], p1(x), full(x))
        np.testing.assert_allclose(engine.run(x), want, rtol=1e-5, atol=1e-5)
        assert calls == want_calls, mask
    plain = open_engine(root, backend="onnxruntime", threads=1, batch1_session=False)
    assert plain.info.details["batch1_session"] is False and plain.session.batch1 is None


def test_onnxruntime_engine_can_ignore_p1_graph(p1_bundle):
    root, full, _ = p1_bundle
    engine = open_engine(root, backend="onnxruntime", single_person=False)
    x = _windows(2, [True, True])
    np.testing.assert_allclose(engine.run(x), full(x), rtol=1e-5, atol=1e-5)
    assert engine.info.details["single_person_file"] is None


def test_old_bundle_without_p1_graph_runs_the_full_graph(p1_bundle):
    root, full, _ = p1_bundle
    data = dict(read_bundle(root).data)
    data["models"] = {"fp32": "model.onnx"}
    write_bundle_json(root, data)
    engine = open_engine(root, backend="onnxruntime")
    x = _windows(3, [True, False, True])
    np.testing.assert_allclose(engine.run(x), full(x), rtol=1e-5, atol=1e-5)


def test_p1_graph_of_other_precision_is_not_used(p1_bundle):
    root, _, p1 = p1_bundle
    int8 = _tiny_onnx(root / "model.int8.onnx", 2)
    data = dict(read_bundle(root).data)
    data["models"] = {**data["models"], "int8": "model.int8.onnx"}
    write_bundle_json(root, data)
    x = _windows(2, [True, True])
    np.testing.assert_allclose(open_engine(root, backend="onnxruntime", precision="int8").run(x), int8(x),
                               rtol=1e-5, atol=1e-5)


def test_auto_backend_works_without_torch(p1_bundle, monkeypatch):
    root, _, p1 = p1_bundle
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    engine = open_engine(root, backend="auto")
    assert engine.info.backend == "onnxruntime"
    x = _windows(1, [True])
    np.testing.assert_allclose(engine.run(x), p1(x), rtol=1e-5, atol=1e-5)


def test_real_bundle_engine_matches_with_and_without_p1(request, tmp_path):
    """The exported nano bundle: routed and full-graph logits agree on one-person and mixed batches."""
    pytest.importorskip("torch")
    from tests.calibration._models import make_bundle, make_checkpoint

    ckpt = make_checkpoint(tmp_path / "nano.pt", None, None)
    bundle = tmp_path / "bundle"
    make_bundle(bundle, ckpt, None, samples=2)
    from sttr.calibration.bundle_writer import synthetic_windows

    x = synthetic_windows(6, 3, 64, 25, 2, seed=5)  # windows 0-1 two persons, 2-5 one person
    routed = open_engine(bundle, backend="onnxruntime").run(x)
    plain = open_engine(bundle, backend="onnxruntime", single_person=False).run(x)
    assert np.abs(routed - plain).max() <= 1e-4


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_auto_backend_imports_no_torch_in_a_fresh_process(p1_bundle, precision):
    """The live path on a CPU box: open_engine(auto) + run must not import torch even when it is installed."""
    import subprocess

    root, _, _ = p1_bundle
    code = ("import sys, numpy as np\n"
            "from sttr.realtime.engines import open_engine\n"
            f"e = open_engine({str(root)!r}, backend='auto', precision={precision!r})\n"
            f"e.run(np.zeros((1, {C}, {T}, {V}, {M}), np.float32))\n"
            "print(e.info.backend, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["onnxruntime", "False"], out.stdout + out.stderr
