"""Calibration windows that drive the FP32 network far out of its range are left out of the INT8 ranges and the
temperature fit: a trained T-TR on MSR Action3D gave logits ~4000 on 5 of 137 windows (~6 elsewhere), and INT8
ranges taken over them rounded every ordinary activation to zero (top-1 agreement with FP32 10 %; 90 % without)."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.calibration import calibrate_bundle as cb


def _logits(peaks):
    out = np.zeros((len(peaks), 5), np.float32)
    out[:, 1] = peaks
    return out


def test_windows_far_out_of_range_are_left_out(monkeypatch, caplog):
    peaks = np.array([5.0, 6.0, 4.0, 4000.0, 5.5, 7.0, 900.0, 6.5])
    windows = np.arange(len(peaks), dtype=np.float32)[:, None]
    monkeypatch.setattr(cb, "onnx_logits", lambda model, w: _logits(peaks[w[:, 0].astype(int)]))
    kept, dropped = cb.in_range_windows("model.onnx", windows)
    assert dropped == 2 and kept[:, 0].tolist() == [0, 1, 2, 4, 5, 7]
    assert "2 of 8 calibration windows drive the FP32 network far out of its range" in caplog.text


@pytest.mark.parametrize("peaks", [[5.0, 6.0, 9.0, 40.0], [1e-9, 1e-9, 2e-9]])
def test_ordinary_spreads_keep_every_window(peaks):
    assert cb.in_range(_logits(np.array(peaks))).all()


def test_the_temperature_is_fitted_on_the_windows_in_range():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5)).astype(np.float32)
    logits[np.arange(200), labels] += 3.0
    held = type("Held", (), {"has_labels": True, "labels": labels})()
    clean = cb._temperature(logits, held, 5)
    wild = logits.copy()
    wild[:6, (labels[:6] + 1) % 5] = 4000.0  # six confidently wrong windows far out of range
    report = cb._temperature(wild, held, 5)
    assert report["windows_left_out"] == 6 and clean["windows_left_out"] == 0
    assert report["temperature"] == pytest.approx(clean["temperature"], rel=0.2)
    assert not report["at_search_limit"]


def test_the_held_out_agreement_is_also_given_where_fp32_answers_in_its_range(monkeypatch, tmp_path):
    fp32 = _logits(np.array([5.0, 6.0, 4.0, 4000.0, 5.5]))
    candidate = fp32.copy()
    candidate[0, 3] = candidate[3, 3] = 1e4  # disagree on one ordinary window and on the wild one
    monkeypatch.setattr(cb, "quantize_int8", lambda *args, **kwargs: {})
    monkeypatch.setattr(cb, "onnx_logits", lambda path, windows: candidate)
    report = cb._make(tmp_path / "m.onnx", tmp_path / "o.onnx", "int8", np.zeros(1), np.zeros(5), fp32, None,
                      cb.CalibrateOptions(data="unused"))
    held = report["held_out"]
    assert held["top1_agreement"] == pytest.approx(0.6)
    assert held["in_range"]["n"] == 4 and held["in_range"]["top1_agreement"] == pytest.approx(0.75)
