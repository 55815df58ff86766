"""benchmarks/model_speed.py: arguments checked before any timing, one-line errors, the JSON it writes."""
from __future__ import annotations

import json

import pytest
import torch

from .test_bench_common import load_bench


@pytest.fixture(scope="module")
def ms():
    return load_bench("model_speed")


@pytest.fixture
def no_timing(ms, monkeypatch):
    def timed(*args, **kwargs):
        raise AssertionError("timed before the arguments were checked")
    monkeypatch.setattr(ms, "bench_one", timed)


@pytest.mark.parametrize("args", [["--iters", "0"], ["--train-iters", "0"], ["--batch", "0"], ["--train-batch", "0"],
                                  ["--warmup", "-1"], ["--frames", "0"], ["--frames", "abc"], ["--threads", "-1"],
                                  ["--variants", "s-tr,nope"], ["--phase-budget", "0"]])
def test_bad_values_are_refused_by_the_parser(ms, args, capsys):
    with pytest.raises(SystemExit) as exc:
        ms._parse(args)
    assert exc.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_lists_are_parsed_once(ms):
    args = ms._parse(["--variants", "s-tr, t-tr", "--frames", "16,32", "--threads", "1,2"])
    assert args.variants == ["s-tr", "t-tr"] and args.frames == [16, 32] and args.threads == [1, 2]


def test_a_cuda_device_torch_cannot_see_is_one_line(ms, monkeypatch, capsys, no_timing):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ms._devices("auto") == [torch.device("cpu")]
    assert ms.main(["--device", "cuda", "--variants", "s-tr", "--frames", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("model_speed.py: error: --device cuda:") and err.count("\n") == 1


def test_auto_adds_cuda_when_torch_sees_it(ms, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert ms._devices("auto") == [torch.device("cpu"), torch.device("cuda")]
    assert ms._devices("cuda:0") == [torch.device("cuda:0")]
    with pytest.raises(ValueError, match="sees 1 CUDA"):
        ms._devices("cuda:1")


def test_missing_reference_folder_and_unwritable_out_stop_before_timing(ms, tmp_path, capsys, no_timing):
    assert ms.main(["--reference-dir", str(tmp_path), "--variants", "s-tr", "--frames", "4"]) == 2
    assert "expected st_gcn/net/st_gcn.py" in capsys.readouterr().err
    assert ms.main(["--out", str(tmp_path / "no" / "r.json"), "--variants", "s-tr", "--frames", "4"]) == 2
    assert "--out: folder" in capsys.readouterr().err


def test_json_records_machine_versions_and_settings(ms, tmp_path, monkeypatch):
    row = {"variant": "s-tr", "T": 4, "device": "cpu", "threads": 1, "params": 1, "params_reference_minus_person_bn": 1,
           "gflops": 1.0, "latency_ms_p50": 2.0, "latency_ms_p99": 3.0, "empty_slot_ms_p50": 1.0,
           "speedup_empty_vs_full": 2.0, "throughput_windows_per_s": 4.0, "reference_ms": None,
           "speedup_vs_reference": None, "attainable_gflops_per_s": 100.0, "floor_ms": 10.0}
    monkeypatch.setattr(ms, "bench_one", lambda *a: dict(row))
    out = tmp_path / "speed.json"
    assert ms.main(["--variants", "s-tr", "--frames", "4", "--threads", "1", "--out", str(out)]) == 0
    env = json.loads(out.read_text())["env"]
    assert env["versions"]["torch"] and env["torch"] == torch.__version__
    assert env["cpu"] is not None and env["settings"]["frames"] == [4] and env["threads"] == "1"
    assert env["model_py_sha256"] and "git_head" in env


def test_a_quoted_reference_timing_gets_no_ratio(ms, monkeypatch):
    # another machine's figure: printed (marked q) for orientation, never divided by ours
    monkeypatch.setattr(ms, "REFERENCE_MS", {("nano", 4): 1.0})
    monkeypatch.setattr(ms, "attainable_gflops", lambda device: 100.0)
    args = ms._parse(["--variants", "nano", "--frames", "4", "--iters", "1", "--warmup", "0", "--batch", "1",
                      "--no-train"])
    row = ms.bench_one("nano", 4, args, torch.device("cpu"))
    assert row["reference_source"] == "quoted" and row["reference_ms"] == 1.0
    assert row["speedup_vs_reference"] is None
    line = ms._table([row]).splitlines()[2]
    assert line.split()[-2:] == ["1.0q", "-"]
    assert row["speedup_empty_vs_full"] == pytest.approx(row["latency_ms_p50"] / row["empty_slot_ms_p50"])
