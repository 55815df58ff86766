"""`sttr eval BUNDLE`: a bundle's ONNX files scored on a whole generated split, per precision."""
from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from sttr.calibration.bundle_writer import synthetic_windows  # noqa: E402
from sttr.calibration.evaluate_bundle import evaluate_bundle  # noqa: E402
from sttr.calibration.parity import onnx_logits  # noqa: E402
from sttr.model.cli.main import main as sttr_main  # noqa: E402

from ._models import T  # noqa: E402


def _split(folder, windows, labels, split="test", layout="ntu25", channels=None):
    """A generated split as `sttr gendata` writes it (data, labels, meta)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{split}_data.npy", np.ascontiguousarray(windows, dtype=np.float32))
    names = [f"sample{i:03d}" for i in range(len(windows))]
    with open(folder / f"{split}_label.pkl", "wb") as f:
        pickle.dump((names, [int(v) for v in labels]), f)
    (folder / f"{split}_meta.json").write_text(json.dumps({"layout": layout, **({"channels": channels} if channels
                                                                                 else {})}))
    return folder


@pytest.fixture(scope="module")
def synthetic_split(tmp_path_factory):
    x = synthetic_windows(10, 3, T, 25, 2, seed=11)
    x[3:, ..., 1] = 0  # most windows with one person, as in NTU
    return _split(tmp_path_factory.mktemp("split"), x, np.arange(10) % 4), x


def test_fp32_metrics_and_scores_are_those_of_the_onnx_file(bundle_dir, synthetic_split, tmp_path):
    folder, x = synthetic_split
    report = evaluate_bundle(bundle_dir, folder, out_dir=tmp_path, batch_size=4)  # 10 windows: a short last batch
    logits = onnx_logits(bundle_dir / "model.onnx", x)
    r = report["precisions"]["fp32"]
    assert report["num_samples"] == 10 and report["window"] == T
    assert r["top1"] == pytest.approx(float((logits.argmax(1) == np.arange(10) % 4).mean()))
    with open(r["scores"], "rb") as f:
        scores = pickle.load(f)
    assert list(scores) == [f"sample{i:03d}" for i in range(10)]
    assert np.allclose(np.stack(list(scores.values())), logits, atol=1e-5)
    assert (tmp_path / "test_fp32_confusion.png").is_file() and (tmp_path / "test_fp32_metrics.json").is_file()


def test_longer_samples_are_cut_to_the_bundle_window(bundle_dir, tmp_path):
    x = synthetic_windows(3, 3, 2 * T, 25, 2, seed=2)
    report = evaluate_bundle(bundle_dir, _split(tmp_path / "long", x, [0, 1, 2]), out_dir=tmp_path / "out")
    assert report["window"] == T and report["num_samples"] == 3


def test_int8_is_compared_with_fp32(calibrated_dir, ntu_windows, tmp_path):
    folder = _split(tmp_path / "ntu", ntu_windows.windows, ntu_windows.labels)
    report = evaluate_bundle(calibrated_dir, folder, out_dir=tmp_path / "out", precisions=["fp32", "int8"])
    fp32 = onnx_logits(calibrated_dir / "model.onnx", ntu_windows.windows)
    int8 = onnx_logits(calibrated_dir / "model.int8.onnx", ntu_windows.windows)
    agreement = report["precisions"]["int8"]["agreement"]
    assert agreement["with"] == "fp32" and "agreement" not in report["precisions"]["fp32"]
    assert agreement["top1_agreement"] == pytest.approx(float((fp32.argmax(1) == int8.argmax(1)).mean()))
    assert report["precisions"]["int8"]["top1"] == pytest.approx(
        float((int8.argmax(1) == ntu_windows.labels).mean()))


def test_cli_routes_a_bundle_and_names_a_missing_precision(bundle_dir, synthetic_split, tmp_path, capsys):
    folder, _ = synthetic_split
    assert sttr_main(["eval", str(bundle_dir), "--data", str(folder), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fp32 +top-1 \d+\.\d\d%", out) and "10 samples" in out
    assert sttr_main(["eval", str(bundle_dir), "--data", str(folder), "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert "has no int8 model" in err and "sttr calibrate" in err


def test_the_joints_of_a_joints_and_bones_split_feed_a_joints_bundle(bundle_dir, synthetic_split, tmp_path):
    folder, x = synthetic_split
    both = np.concatenate([x, synthetic_windows(len(x), 3, T, 25, 2, seed=5)], axis=1)
    merged = _split(tmp_path / "merged", both, np.arange(10) % 4, channels=["x", "y", "z", "bx", "by", "bz"])
    got = evaluate_bundle(bundle_dir, merged, out_dir=tmp_path / "a")["precisions"]["fp32"]
    want = evaluate_bundle(bundle_dir, folder, out_dir=tmp_path / "b")["precisions"]["fp32"]
    with open(got["scores"], "rb") as f, open(want["scores"], "rb") as g:
        a, b = pickle.load(f), pickle.load(g)
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_a_split_that_does_not_fit_is_named(bundle_dir, tmp_path, capsys):
    bones = _split(tmp_path / "bones", synthetic_windows(2, 6, T, 25, 2, seed=1), [0, 1],
                   channels=["bx", "by", "bz", "x", "y", "z"])  # bones first: not the joints the bundle takes
    assert sttr_main(["eval", str(bundle_dir), "--data", str(bones)]) == 2
    err = capsys.readouterr().err
    assert "does not fit bundle" in err and "C: bundle expects 3, input has 6" in err
    other = _split(tmp_path / "kinect", synthetic_windows(2, 3, T, 20, 2, seed=1), [0, 1], layout="kinect20")
    with pytest.raises(ValueError, match="V: bundle expects 25, input has 20.*layout: bundle expects 'ntu25'"):
        evaluate_bundle(bundle_dir, other, out_dir=tmp_path / "o")


def test_a_bundle_that_stores_its_input_form_but_not_channel_names_takes_leading_joints():
    """A fused bundle keeps `bones: none` and no `channels` list: a joints + bones split still feeds it."""
    from sttr.calibration.evaluate_bundle import _leading_channels
    from sttr.model.bundle import InputSpec

    spec = InputSpec(C=3, T=32, V=20, M=1, layout="kinect20",
                     preprocess={"layout": "kinect20", "bones": "none", "window": 32})
    assert _leading_channels(spec, ["x", "y", "z", "bx", "by", "bz"]) == 3
    assert _leading_channels(spec, ["bx", "by", "bz", "x", "y", "z"]) is None
