"""Session fixtures: one nano checkpoint, its exported bundle and a calibrated copy (built once, seconds)."""
from __future__ import annotations

import shutil

import pytest

from ._models import make_bundle, make_checkpoint, real_windows, shared_data_or_none


@pytest.fixture(scope="session")
def ntu_windows(request):
    """Real NTU windows (skips when the shared data is absent)."""
    ws = real_windows(shared_data_or_none(request))
    if ws is None:
        pytest.skip("real NTU .skeleton samples not found (../shared/data/ntu60)")
    return ws


@pytest.fixture(scope="session")
def nano_checkpoint(request, tmp_path_factory):
    pytest.importorskip("torch")
    shared = shared_data_or_none(request)
    ws = real_windows(shared)
    path = tmp_path_factory.mktemp("ckpt") / "nano.pt"
    return make_checkpoint(path, None if ws is None else ws.windows, None if ws is None else ws.labels)


@pytest.fixture(scope="session")
def ntu_dir(request):
    shared = shared_data_or_none(request)
    return shared / "ntu60" if shared is not None and (shared / "ntu60").is_dir() else None


@pytest.fixture(scope="session")
def bundle_dir(nano_checkpoint, ntu_dir, tmp_path_factory):
    """An exported FP32 bundle (parity checked on real NTU windows when present, else synthetic ones)."""
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("bundles") / "nano"
    make_bundle(out, nano_checkpoint, ntu_dir)
    return out


@pytest.fixture(scope="session")
def calibrated_dir(bundle_dir, ntu_dir, tmp_path_factory):
    """A copy of `bundle_dir` calibrated to INT8 + FP16 (+ temperature) on the real NTU windows."""
    from sttr.calibration.calibrate_bundle import CalibrateOptions, calibrate_bundle

    if ntu_dir is None:
        pytest.skip("real NTU .skeleton samples not found (../shared/data/ntu60)")
    out = tmp_path_factory.mktemp("calibrated") / "nano"
    shutil.copytree(bundle_dir, out)
    calibrate_bundle(out, CalibrateOptions(data=ntu_dir, samples=64, fp16=True))
    return out

