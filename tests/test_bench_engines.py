"""benchmarks/engines.py: arguments and inputs checked before export, one-line errors, ratios, devices, the JSON."""
from __future__ import annotations

import types

import pytest
import torch

from .test_bench_common import load_bench


@pytest.fixture(scope="module")
def eng():
    return load_bench("engines")


@pytest.fixture
def no_run(eng, monkeypatch):
    def run(args):
        raise AssertionError("measured before the inputs were checked")
    monkeypatch.setattr(eng, "run", run)


@pytest.mark.parametrize("args", [["--batch", "0"], ["--rounds", "0"], ["--repeats", "0"], ["--window", "0"],
                                  ["--threads", "-1"]])
def test_bad_values_are_refused_by_the_parser(eng, args):
    with pytest.raises(SystemExit) as exc:
        eng._parser().parse_args(["--data", "d", *args])
    assert exc.value.code == 2


@pytest.mark.parametrize("extra, message", [
    ([], "--data {tmp}/none does not exist"),
    (["--preset", "nope"], "--preset: unknown preset 'nope'"),
    (["--bundle", "{tmp}/nobundle"], "--bundle {tmp}/nobundle does not exist"),
    (["--checkpoint", "{tmp}/x.pt"], "--checkpoint {tmp}/x.pt does not exist"),
    (["--out", "{tmp}/no/r.json"], "--out: folder {tmp}/no does not exist"),
])
def test_inputs_are_checked_before_export_in_one_line(eng, tmp_path, capsys, no_run, extra, message):
    data = str(tmp_path / "none") if not extra else str(tmp_path)
    argv = ["--data", data, *[a.replace("{tmp}", str(tmp_path)) for a in extra]]
    assert eng.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"engines.py: error: {message.replace('{tmp}', str(tmp_path))}") and err.count("\n") == 1


def test_making_a_bundle_without_onnxruntime_says_so(eng, tmp_path, monkeypatch, capsys, no_run):
    monkeypatch.setattr(eng, "_installed", lambda module: module != "onnxruntime")
    assert eng.main(["--data", str(tmp_path)]) == 2
    assert "needs onnxruntime" in capsys.readouterr().err


def test_ratios_are_to_eager_of_the_same_repeat(eng, monkeypatch):
    times = {"torch-eager-fp32": [10.0, 12.0, 14.0], "fast": [5.0, 6.0, 7.0]}  # ms; medians 12 and 6
    monkeypatch.setattr(eng, "_interleaved", lambda fns, x, rounds: times)
    args = types.SimpleNamespace(rounds=3, batch=4)
    rows = eng._measure(dict.fromkeys(times), None, None, None, args)
    assert rows["fast"]["latency_speedup"] == pytest.approx(2.0)
    assert rows["fast"]["latency_speedup_two_persons"] == pytest.approx(2.0)
    # throughput: 4 windows in 6 ms vs in 12 ms
    assert rows["fast"]["throughput_windows_s"] == pytest.approx(4 / 0.006)
    assert rows["fast"]["throughput_speedup"] == pytest.approx(2.0)
    assert rows["torch-eager-fp32"]["latency_speedup"] == 1.0


def test_cpu_flag_keeps_every_engine_on_the_cpu(eng, monkeypatch):
    args = types.SimpleNamespace(threads=0, cpu=True, batch=16)
    assert eng._engine_options("torch", args) == {"threads": None, "device": "cpu"}
    assert eng._engine_options("onnxruntime", args)["device"] == "cpu"
    assert eng._engine_options("tensorrt", args) == {"max_batch": 16}  # the throughput batch in one call
    import sttr.realtime.engines as engines

    opened = []
    monkeypatch.setattr(engines, "available_backends", lambda: ["tensorrt"])
    monkeypatch.setattr(engines, "open_engine", lambda *a, **k: opened.append(a))
    out, skipped = eng._engines("bundle", args)
    assert not out and not opened and set(skipped) == {"tensorrt-fp32", "tensorrt-fp16", "tensorrt-int8"}


def test_eager_baseline_runs_on_the_gpu_when_there_is_one(eng, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert eng._eager_device(False) == "cuda" and eng._eager_device(True) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert eng._eager_device(False) == "cpu"


def test_eager_moves_the_network_and_returns_host_logits(eng, monkeypatch):
    moved = []

    class Net(torch.nn.Module):
        def to(self, device):
            moved.append(device)
            return self

        def forward(self, x):
            return x.sum(dim=(1, 2, 3, 4)).unsqueeze(1)

    monkeypatch.setattr(eng, "_eager_network", lambda bundle: Net())
    import numpy as np

    out = eng._eager("b", None, "cpu")(np.ones((2, 1, 1, 1, 1), np.float32))
    assert moved == ["cpu"] and isinstance(out, np.ndarray) and out.tolist() == [[1.0], [1.0]]


def test_table_shows_devices_and_engines_left_out(eng):
    row = {"p50_ms": 2.0, "p99_ms": 3.0, "latency_speedup": 1.0, "p50_ms_two_persons": 4.0,
           "latency_speedup_two_persons": 1.0, "throughput_windows_s": 5.0, "throughput_speedup": 1.0,
           "top1_agreement": 1.0}
    report = {"results": {"torch-eager-fp32": row, "tensorrt-fp16": row}, "repeats": [{}],
              "engines": {"torch-eager-fp32": {"device": "cuda"}, "tensorrt-fp16": {"device": "cuda:0 H200"}},
              "skipped": {"torch-int8": "no int8"}, "fp32_floor": {"gflop": 1.0, "gflops_per_s": 1000.0,
                                                                   "floor_ms": 1.0}}
    table = eng._table(report)
    assert "devices: torch-eager-fp32 cuda, tensorrt-fp16 cuda:0 H200" in table
    assert "not timed: torch-int8: no int8" in table


def test_a_bundle_with_a_dynamic_time_axis_reads_windows_of_its_preprocess_window(eng, monkeypatch, tmp_path):
    # spec.T is None there: `None // 4` was a TypeError before anything was timed
    import sttr.calibration.calibration_data as calibration_data
    import sttr.model.bundle as bundle_module

    spec = types.SimpleNamespace(T=None, M=2, preprocess={"window": 32})
    monkeypatch.setattr(bundle_module, "read_bundle", lambda path: types.SimpleNamespace(input=spec))
    asked = {}

    def load_windows(data, **kwargs):
        asked.update(kwargs)
        raise LookupError("stop here")
    monkeypatch.setattr(calibration_data, "load_windows", load_windows)
    args = types.SimpleNamespace(bundle=str(tmp_path), data="d", window=64)
    with pytest.raises(LookupError):
        eng.run(args)
    assert asked["T"] == 32 and asked["stride"] == 8
