"""The `motion` switch: frame differences computed inside the network, exactly as if given as input channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sttr.model.config import STTRConfig, preset
from sttr.model.sttr import STTR


def _diff(x: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


def _pair(motion: str):
    """A model with the switch and a plain one with the same weights that takes the differences as input."""
    torch.manual_seed(0)
    with_motion = STTR(preset("nano", motion=motion, num_classes=5)).eval()
    plain = STTR(preset("nano", in_channels=with_motion.config.network_channels, num_classes=5)).eval()
    plain.load_state_dict(with_motion.state_dict())
    return with_motion, plain


@pytest.mark.parametrize("motion, as_input", [
    ("only", _diff), ("append", lambda x: torch.cat([x, _diff(x)], dim=1))])
def test_motion_equals_the_differences_given_as_input(motion, as_input):
    model, plain = _pair(motion)
    x = torch.randn(3, 3, 16, 25, 2, generator=torch.Generator().manual_seed(1))
    x[1, ..., 1] = 0  # an absent second person: its differences are zero too, so the skip still applies
    with torch.no_grad():
        got, want = model(x), plain(as_input(x))
    assert torch.allclose(got, want, atol=1e-5)
    assert model.config.in_channels == 3  # the window the caller gives is unchanged


def test_motion_changes_the_widths_it_must():
    assert preset("s-tr-bones", motion="append").network_channels == 12
    assert preset("s-tr-bones", motion="only").network_channels == 6
    cfg = preset("nano", motion="append", concat_original=True)
    assert cfg.units()[3][0] == cfg.stage_widths()[0] + 6  # the raw copy joins with the differences
    assert preset("nano", motion="append", attention_in_all_layers=True, window_blocks=(4, 4, 4)).units()[0][0] == 6


def test_a_static_pose_has_no_motion():
    model = STTR(preset("nano", motion="only", num_classes=5)).eval()
    still = torch.randn(1, 3, 1, 25, 2).expand(2, 3, 16, 25, 2).contiguous()
    with torch.no_grad():
        assert torch.allclose(model(still)[0], model(torch.zeros_like(still))[0], atol=1e-6)


def test_unknown_motion_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"motion: expected one of \('none', 'append', 'only'\)"):
        STTRConfig(motion="velocity")


def test_motion_round_trips_and_exports(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from sttr.model.checkpoint import load_checkpoint, save_checkpoint
    from sttr.model.preprocess import PreprocessSpec
    from sttr.model.sttr import STTR as _STTR

    torch.manual_seed(0)
    model = _STTR(preset("nano", motion="append", num_classes=5)).eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", model,
                           preprocess=PreprocessSpec(layout="ntu25", window=16, persons=2).to_dict())
    loaded = load_checkpoint(ckpt).build_model()
    assert loaded.config.motion == "append"
    from sttr.calibration.bundle_writer import ExportOptions, export_bundle, synthetic_windows

    export_bundle(ckpt, tmp_path / "b", ExportOptions(exporter="legacy", opset=17, samples=4))
    x = synthetic_windows(2, 3, 16, 25, 2, seed=3)
    got = ort.InferenceSession(str(tmp_path / "b" / "model.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    with torch.no_grad():
        want = loaded(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-4 * max(1.0, np.abs(want).max())
    from sttr.model.bundle import read_bundle

    x[..., 1] = 0  # the single-person graph (slot 0 only, the empty slot's features from a buffer)
    p1 = ort.InferenceSession(str(read_bundle(tmp_path / "b").single_person_path("fp32")),
                              providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with torch.no_grad():
        want = loaded(torch.from_numpy(x)).numpy()
    assert np.abs(p1 - want).max() < 1e-4 * max(1.0, np.abs(want).max())
