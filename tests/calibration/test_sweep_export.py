"""Export sweep findings: every -agcn network exports with the legacy exporter (used alone at --opset 17 and as the
fallback of `auto`), and an export that every exporter fails is one line from `sttr export`, not a traceback."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from sttr.calibration.export_onnx import export_onnx  # noqa: E402
from sttr.calibration.graph_form import export_form  # noqa: E402
from sttr.calibration.parity import onnx_logits  # noqa: E402
from sttr.model.config import preset  # noqa: E402
from sttr.model.sttr import STTR  # noqa: E402


@pytest.mark.parametrize("name,kw", [("t-tr-agcn", {}), ("s-tr-agcn", {"spatial_only_attention": False}),
                                     ("t-tr-agcn", {"agcn_graph": "constant"})])
def test_adaptive_gcn_networks_export_with_the_legacy_exporter(tmp_path, name, kw):
    torch.manual_seed(0)
    model = STTR(preset(name, base_channels=8, num_heads=2, num_classes=5, **kw)).eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 25, 2)).astype(np.float32)
    info = export_onnx(export_form(model), tmp_path / "m.onnx", example=x, exporter="legacy", opset=17)
    assert info["exporter"] == "legacy"
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_logits(tmp_path / "m.onnx", x), expected, atol=1e-4, rtol=1e-4)


def test_export_cli_reports_a_failed_export_in_one_line(tmp_path, monkeypatch, capsys):
    from sttr.calibration import bundle_writer
    from sttr.calibration.cli import export as cli
    from sttr.model.checkpoint import save_checkpoint
    from sttr.model.preprocess import PreprocessSpec

    model = STTR(preset("nano", num_classes=5)).eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", model, preprocess=PreprocessSpec(window=16).to_dict())

    def broken(*args, **kwargs):
        raise RuntimeError("ONNX export failed with every exporter tried: {'legacy': 'SymbolicValueError: x'}")

    monkeypatch.setattr(bundle_writer, "export_onnx", broken)
    assert cli.main([str(ckpt), "--out", str(tmp_path / "b"), "--no-single-person"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sttr export: ONNX export failed") and "\n" not in err
    assert not (tmp_path / "b").exists()
