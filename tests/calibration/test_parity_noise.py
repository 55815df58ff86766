"""Export parity on ill-conditioned logits: an export is as good as PyTorch when it differs by no more than PyTorch's
own float32 error (an untrained S-TR with batch-norm statistics of real data gave logits ~1e3 on synthetic windows,
float32 rounding alone moved them by 0.67, and `sttr export` refused a correct graph)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sttr.calibration.bundle_writer import ExportOptions, ParityError, _parity  # noqa: E402


class IllConditioned(torch.nn.Module):
    """Logits that float32 cannot compute exactly: a large sum cancelled by a large difference."""

    def forward(self, x):
        s = x.flatten(1).sum(1, keepdim=True)
        big = s * 1e6
        return torch.cat([(big + x.flatten(1)[:, :3]) - big, s.abs() + 1e3], 1) * 100.0  # the last class wins


def _windows():
    return np.random.default_rng(0).normal(size=(4, 3, 8, 5, 1)).astype(np.float32)


def test_a_graph_within_pytorchs_own_float32_error_passes_and_says_so():
    model, x = IllConditioned(), _windows()
    with torch.no_grad():
        exact = model.double()(torch.from_numpy(x).double()).numpy()
    model.float()
    candidate = exact.astype(np.float32)  # what a better-rounding graph would give
    report = _parity(model, x, candidate, None, ExportOptions(), "model.onnx")
    assert report["passed"] and report["float32_noise"] > report["max_abs_logit_diff"] / 2
    assert report["tolerance"] == pytest.approx(2 * report["float32_noise"])


def test_a_wrong_graph_still_fails_naming_pytorchs_own_error():
    model, x = IllConditioned(), _windows()
    with torch.no_grad():
        wrong = model(torch.from_numpy(x)).numpy() + 1e3
    with pytest.raises(ParityError, match=r"PyTorch's own float32 error on them: "):
        _parity(model, x, wrong, None, ExportOptions(), "model.onnx")


def test_a_well_conditioned_model_keeps_the_fixed_tolerance():
    model, x = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(120, 4)), _windows()
    with torch.no_grad():
        good = model(torch.from_numpy(x)).numpy()
    report = _parity(model, x, good + 1e-6, None, ExportOptions(), "model.onnx")
    assert report["passed"] and "float32_noise" not in report
    with pytest.raises(ParityError, match=r"max \|logit difference\| 0.05 \(tolerance 0.00"):
        _parity(model, x, good + 0.05, None, ExportOptions(), "model.onnx")
