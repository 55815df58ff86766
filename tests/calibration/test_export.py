"""`sttr export`: ONNX matches PyTorch on real NTU windows and generated inputs; bundle.json holds the record."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from sttr.calibration.bundle_writer import ExportOptions, export_bundle, synthetic_windows  # noqa: E402
from sttr.calibration.cli.export import main as export_main  # noqa: E402
from sttr.model.bundle import read_bundle  # noqa: E402
from sttr.model.checkpoint import load_checkpoint  # noqa: E402

from ._models import T  # noqa: E402


def _onnx(path, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _torch(ckpt, x):
    import torch

    with torch.no_grad():
        return load_checkpoint(ckpt).build_model()(torch.from_numpy(x)).numpy()


def test_parity_on_real_ntu_windows(bundle_dir, nano_checkpoint, ntu_windows):
    x = ntu_windows.windows[::3]
    ref, got = _torch(nano_checkpoint, x), _onnx(bundle_dir / "model.onnx", x)
    assert np.abs(ref - got).max() < 1e-3 * max(1.0, np.abs(ref).max())  # logits
    assert (ref.argmax(1) == got.argmax(1)).all()
    parity = read_bundle(bundle_dir).data["export"]["parity"]
    assert "NTU" in parity["data"] and parity["passed"] and parity["top1_agreement"] == 1.0


@pytest.mark.parametrize("n", [1, 5])
def test_parity_on_generated_inputs_with_dynamic_batch(bundle_dir, nano_checkpoint, n):
    x = synthetic_windows(n, 3, T, 25, 2, seed=7)
    ref, got = _torch(nano_checkpoint, x), _onnx(bundle_dir / "model.onnx", x)
    assert got.shape == (n, 60)
    assert np.abs(ref - got).max() < 1e-3 * max(1.0, np.abs(ref).max())  # logits


def test_bundle_json_records_spec_labels_hashes_and_versions(bundle_dir):
    data = json.loads((bundle_dir / "bundle.json").read_text())
    assert data["format"] == "sttr.bundle/1"
    assert (data["input"]["C"], data["input"]["T"], data["input"]["V"], data["input"]["M"]) == (3, T, 25, 2)
    assert data["input"]["layout"] == "ntu25" and data["input"]["preprocess"]["window"] == T
    assert len(data["labels"]) == data["output"]["num_classes"] == 60
    assert data["labels"][0] == "drink water"  # NTU-60 names for a 60-class model without labels
    assert data["model"]["config"]["base_channels"] == 8
    for name in ("model.onnx", "model.pt"):
        assert data["files"][name]["sha256"] == hashlib.sha256((bundle_dir / name).read_bytes()).hexdigest()
    assert {"torch", "onnx", "onnxruntime", "python"} <= set(data["versions"])
    assert data["export"]["opset"] >= 17 and data["temperature"] == 1.0


def test_existing_bundle_is_not_replaced_without_overwrite(bundle_dir, nano_checkpoint):
    before = (bundle_dir / "bundle.json").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_bundle(nano_checkpoint, bundle_dir, ExportOptions(exporter="legacy"))
    assert (bundle_dir / "bundle.json").read_bytes() == before


def test_persons_must_match_the_model(nano_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="--persons 1 does not match the model, which has 2"):
        export_bundle(nano_checkpoint, tmp_path / "b", ExportOptions(persons=1, exporter="legacy"))
    assert not (tmp_path / "b").exists() and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_export_with_fp16(nano_checkpoint, tmp_path, capsys):
    out = tmp_path / "cli"
    assert export_main([str(nano_checkpoint), "--out", str(out), "--exporter", "legacy", "--opset", "17",
                        "--fp16", "--samples", "4"]) == 0
    info = read_bundle(out)
    assert info.precisions == ["fp32", "fp16"] and "parity on 4 windows (synthetic)" in capsys.readouterr().out


def test_cli_export_refuses_a_window_or_persons_below_one(nano_checkpoint, tmp_path, capsys):
    for flag in ("--window", "--persons"):
        assert export_main([str(nano_checkpoint), "--out", str(tmp_path / "b"), flag, "0"]) == 1
        assert f"export {flag[2:]} must be >= 1" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_cli_export_refuses_an_existing_folder(nano_checkpoint, bundle_dir, capsys):
    assert export_main([str(nano_checkpoint), "--out", str(bundle_dir)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_help():
    with pytest.raises(SystemExit) as exc:
        export_main(["--help"])
    assert exc.value.code == 0


@pytest.mark.slow
def test_reference_checkpoint_exports(shared_reference, tmp_path):
    import torch

    golden = torch.load(shared_reference / "golden" / "S-TR_T64.pt", weights_only=False)
    ckpt = tmp_path / "reference.pt"
    torch.save(golden["state_dict"], ckpt)
    bundle = export_bundle(ckpt, tmp_path / "ref", ExportOptions(window=64, exporter="legacy", opset=17,
                                                                 include_checkpoint=False))
    assert bundle["model"]["source"] == "reference"
    assert bundle["input"]["preprocess"]["pre_normalization"] == "legacy"
    got = _onnx(tmp_path / "ref" / "model.onnx", golden["input"].numpy().astype(np.float32))
    want = golden["logits"].numpy()
    assert np.abs(got - want).max() < 1e-3 * max(1.0, np.abs(want).max())  # logits


@pytest.mark.slow
def test_auto_exporter_records_which_exporter_worked(nano_checkpoint, tmp_path, capfd):
    bundle = export_bundle(nano_checkpoint, tmp_path / "auto", ExportOptions(exporter="auto", samples=2))
    export = bundle["export"]
    assert export["exporter"] in ("dynamo", "legacy") and export["parity"]["passed"]
    assert export["exporter"] == "dynamo" or "dynamo" in export["errors"]
    said = capfd.readouterr()
    assert "torchvision" not in said.err + said.out and "Warning" not in said.err  # torch's exporter kept quiet


def test_torch_exporter_noise_is_hidden_and_the_settings_restored():
    import logging
    import warnings

    from sttr.calibration.export_onnx import _quiet_torch_exporter

    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    before = logging.getLogger("torch.onnx").level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _quiet_torch_exporter():
            assert not registration.isEnabledFor(logging.WARNING) and registration.isEnabledFor(logging.ERROR)
            warnings.warn("inside torch", FutureWarning)
        warnings.warn("after", UserWarning)
    assert [str(w.message) for w in caught] == ["after"]
    assert logging.getLogger("torch.onnx").level == before
