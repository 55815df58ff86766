"""Temperature scaling: the fit recovers a known temperature; ECE drops; bad input is rejected."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.calibration.temperature import (expected_calibration_error, fit_temperature, nll, softmax,
                                          temperature_report)


def _synthetic(t_true: float, n: int = 20000, k: int = 10, seed: int = 0):
    """Logits z and labels drawn from softmax(z / t_true): the NLL-optimal temperature is t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (n, k))
    p = np.exp(z / t_true - (z / t_true).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z, labels


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(t_true):
    z, labels = _synthetic(t_true)
    assert fit_temperature(z, labels) == pytest.approx(t_true, rel=0.05)


def test_report_shows_ece_dropping_for_overconfident_logits():
    z, labels = _synthetic(2.5)
    report = temperature_report(z, labels)
    assert report["ece_after"] < 0.02 < report["ece_before"]
    assert report["nll_after"] < report["nll_before"]


def test_ece_and_nll_on_hand_computed_cases():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bins: conf 0.9 -> acc 0.5 (|0.4| * 2/4); conf 0.6 -> acc 1.0 (|0.4| * 2/4)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.4)
    assert nll(np.log(probs), labels) == pytest.approx(-np.mean(np.log([0.9, 0.1, 0.6, 0.6])))
    assert softmax(np.array([[0.0, np.log(3.0)]]))[0, 1] == pytest.approx(0.75)


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="expected logits"):
        fit_temperature(np.zeros((2, 3)), np.array([0]))


def test_a_fit_at_the_end_of_the_search_range_says_so():
    from sttr.calibration.temperature import temperature_report

    labels = np.arange(200) % 4
    flat = np.random.default_rng(0).normal(scale=1e-3, size=(200, 4))  # scores that say nothing: T -> infinity
    assert temperature_report(flat, labels)["at_search_limit"] is True
    logits = np.eye(4)[labels] * 3.0 + np.random.default_rng(1).normal(size=(200, 4))
    assert temperature_report(logits, labels)["at_search_limit"] is False
