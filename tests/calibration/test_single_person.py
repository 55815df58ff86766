"""calibration.single_person: the slot-0-only graph gives the full model's logits on one-person windows."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sttr.model.bundle import read_bundle  # noqa: E402

from ._models import T, make_bundle  # noqa: E402


def _nano(seed: int = 0, **overrides):
    from sttr.model.config import preset
    from sttr.model.sttr import STTR

    torch.manual_seed(seed)
    model = STTR(preset("nano", num_classes=60, **overrides))
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():  # non-trivial data/feature batch-norm statistics
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.3)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _full_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.enable_grad():  # grad mode: the full model computes every slot (no empty-slot cache involved)
        return model(torch.from_numpy(x)).detach().numpy()


def _p1_logits(model, x: np.ndarray) -> np.ndarray:
    from sttr.calibration.single_person import SinglePersonSTTR

    with torch.no_grad():
        return SinglePersonSTTR(model, x.shape[2]).eval()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("overrides", [{}, {"concat_original": True}])
def test_matches_full_model_on_random_windows_with_slot1_zeroed(overrides):
    from sttr.calibration.bundle_writer import synthetic_windows
    from sttr.calibration.single_person import zero_other_persons

    model = _nano(1, **overrides)
    x = zero_other_persons(synthetic_windows(6, 3, T, 25, 2, seed=3) * 3.0)
    full, p1 = _full_logits(model, x), _p1_logits(model, x)
    assert np.abs(full - p1).max() <= 1e-4
    assert np.abs(full).max() > 1e-2  # the comparison is not between near-zero logits


def test_differs_from_full_model_when_slot1_is_present():
    from sttr.calibration.bundle_writer import synthetic_windows

    model = _nano(2)
    x = synthetic_windows(4, 3, T, 25, 2, seed=4)[:1].repeat(2, axis=0)  # both slots present
    assert np.abs(_full_logits(model, x) - _p1_logits(model, x)).max() > 1e-3


def test_matches_full_model_on_real_one_person_ntu_windows(ntu_windows):
    one = ntu_windows.windows[~np.any(ntu_windows.windows[..., 1:] != 0, axis=(1, 2, 3, 4))]
    if not len(one):
        pytest.skip("no one-person windows among the shared NTU samples")
    model = _nano(3)
    x = np.ascontiguousarray(one[:16])
    assert np.abs(_full_logits(model, x) - _p1_logits(model, x)).max() <= 1e-4


def test_bundle_records_p1_graph_with_sha256_and_it_matches_model_onnx(bundle_dir):
    import onnxruntime as ort

    from sttr.calibration.bundle_writer import synthetic_windows
    from sttr.calibration.single_person import zero_other_persons

    info = read_bundle(bundle_dir)
    assert info.data["models"]["p1.fp32"] == "model.p1.onnx"
    assert "model.p1.onnx" in info.data["files"]
    assert info.single_person_path("fp32") == bundle_dir / "model.p1.onnx"
    assert info.data["export"]["single_person"]["parity"]["passed"]
    x = zero_other_persons(synthetic_windows(5, 3, T, 25, 2, seed=9))
    full = ort.InferenceSession(str(bundle_dir / "model.onnx")).run(None, {"x": x})[0]
    p1 = ort.InferenceSession(str(bundle_dir / "model.p1.onnx")).run(None, {"x": x})[0]
    assert np.abs(full - p1).max() <= 1e-4


def test_calibrated_bundle_has_p1_int8_and_fp16(calibrated_dir):
    info = read_bundle(calibrated_dir)
    models = info.data["models"]
    assert models["p1.int8"] == "model.p1.int8.onnx" and models["p1.fp16"] == "model.p1.fp16.onnx"
    assert {"model.p1.int8.onnx", "model.p1.fp16.onnx"} <= set(info.data["files"])
    full = info.data["calibration"]["int8"]
    report = full["single_person"]
    assert report["quantize_nodes"] > 0
    # untrained nano model, 10 held-out windows: top-1 margins are tiny, so judge the logit error, not agreement;
    # the one-slot graph quantizes half the work and must not be less exact than the full graph
    assert report["held_out"]["mean_abs_logit_diff"] <= full["held_out"]["mean_abs_logit_diff"]
    assert report["held_out"]["top1_agreement"] >= 0.7


def test_dynamic_time_and_opt_out_bundles_have_no_p1_graph(nano_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    dynamic = make_bundle(tmp_path / "dyn", nano_checkpoint, None, dynamic_time=True, samples=2)
    opted_out = make_bundle(tmp_path / "off", nano_checkpoint, None, single_person=False, samples=2)
    for bundle in (dynamic, opted_out):
        assert not any(k.startswith("p1.") for k in bundle["models"])
        assert "single_person" not in bundle["export"]
