"""benchmarks/train_speed.py: values refused instead of silently replaced, fp16 on CPU refused, the ratio to the
reference only for its shape, and the JSON."""
from __future__ import annotations

import json

import pytest
import torch

from .test_bench_common import load_bench


@pytest.fixture(scope="module")
def ts():
    return load_bench("train_speed")


@pytest.fixture
def fake_speeds(ts, monkeypatch):
    monkeypatch.setattr(ts, "_step_speed", lambda name, *a, **k: {"s-tr": 138.0, "t-tr": 90.0}[name])
    monkeypatch.setattr(ts, "_loader_speed", lambda **k: 1000.0)


@pytest.mark.parametrize("args", [["--batch", "0"], ["--frames", "0"], ["--steps", "0"], ["--threads", "-1"],
                                  ["--persons", "0"], ["--loader-samples", "0"], ["--workers", "0", "-1"]])
def test_zero_or_negative_is_refused_not_replaced_by_the_default(ts, args):
    with pytest.raises(SystemExit) as exc:
        ts._parser().parse_args(args)
    assert exc.value.code == 2


def test_fp16_on_cpu_and_unknown_presets_are_one_line(ts, capsys, fake_speeds):
    assert ts.main(["--device", "cpu", "--precision", "fp16"]) == 2
    assert capsys.readouterr().err.startswith("train_speed.py: error: --precision fp16 needs a CUDA device")
    assert ts.main(["--device", "cpu", "--presets", "s-tr", "nope"]) == 2
    assert "--presets: unknown 'nope'" in capsys.readouterr().err


def test_cpu_run_quotes_no_ratio_to_the_h100(ts, tmp_path, capsys, fake_speeds):
    out = tmp_path / "t.json"
    assert ts.main(["--device", "cpu", "--threads", "1", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["comparable_to_reference"] is False
    assert [r["ratio_to_reference"] for r in report["results"]] == [None, None, None]
    assert report["machine"]["versions"]["torch"] and report["machine"]["settings"]["workers"] == [0]
    assert report["steps"] == 3 and report["batch"] == 4 and report["frames"] == 64  # the CPU defaults


def test_gpu_run_of_the_reference_shape_quotes_the_ratio(ts, tmp_path, monkeypatch, capsys, fake_speeds):
    import sttr.training.distributed as distributed

    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "H200")
    out = tmp_path / "t.json"
    assert ts.main(["--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["comparable_to_reference"] and report["batch"] == 32 and report["frames"] == 300
    ratios = {r["what"]: r["ratio_to_reference"] for r in report["results"]}
    assert ratios["train step s-tr"] == pytest.approx(138 / 276) and ratios["train step t-tr"] == pytest.approx(0.5)
    assert " 0.50" in capsys.readouterr().out
    assert not ts.comparable_to_baseline(True, batch=16, frames=300, persons=2, precision="fp32")
