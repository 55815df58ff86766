"""`sttr export A.pt B.pt`: a fused bundle (weighted sum of streams' logits) that every engine runs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from sttr.calibration.bundle_writer import ExportOptions, export_bundle, synthetic_windows  # noqa: E402
from sttr.calibration.cli.export import main as export_main  # noqa: E402
from sttr.calibration.fused_source import load_fused_source  # noqa: E402
from sttr.model.bundle import BundleIntegrityError, read_bundle  # noqa: E402
from sttr.model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from sttr.model.preprocess import PreprocessSpec  # noqa: E402

from ._models import T, make_checkpoint, real_windows, shared_data_or_none  # noqa: E402

WEIGHTS = (1.0, 0.6)


@pytest.fixture(scope="module")
def streams(request, tmp_path_factory):
    """A joints stream that also computes its motion (`motion='append'`) and a joints ‖ bones stream (nano,
    statistics from real NTU windows when present)."""
    ws = real_windows(shared_data_or_none(request))
    windows, labels = (None, None) if ws is None else (ws.windows, ws.labels)
    folder = tmp_path_factory.mktemp("streams")
    joints = make_checkpoint(folder / "joints.pt", windows, labels, seed=1, motion="append")
    bones = make_checkpoint(folder / "bones.pt", windows, labels, seed=2, bones="merge")
    return joints, bones


@pytest.fixture(scope="module")
def raw_windows(request):
    """Un-normalised joint windows (N, 3, T, 25, 2): real NTU clips cut raw when present, else generated ones."""
    ws = real_windows(shared_data_or_none(request))
    if ws is None:
        return synthetic_windows(6, 3, T, 25, 2, seed=3)
    from sttr.calibration.calibration_data import load_windows

    return load_windows(request.getfixturevalue("shared_data") / "ntu60", T=T, M=2,
                        preprocess=PreprocessSpec(layout="ntu25", window=T, persons=2, pre_normalization="none")
                        .to_dict(), limit=6).windows


@pytest.fixture(scope="module")
def fused_dir(streams, tmp_path_factory, request):
    out = tmp_path_factory.mktemp("fused") / "st"
    shared = shared_data_or_none(request)
    data = shared / "ntu60" if shared is not None and (shared / "ntu60").is_dir() else None
    export_bundle(None, out, ExportOptions(exporter="legacy", opset=17, data=data, samples=8),
                  source=load_fused_source(streams, WEIGHTS))
    return out


def _separately(streams, raw):
    """What fusion means, computed without it: each stream on its own normalised form, logits weighted and summed."""
    import torch

    total = 0
    for path, w in zip(streams, WEIGHTS):
        ckpt = load_checkpoint(path)
        x = PreprocessSpec.from_dict(ckpt.preprocess).apply_batch(raw)
        with torch.no_grad():
            total = total + w * ckpt.build_model()(torch.from_numpy(x)).numpy()
    return total


def test_every_engine_gives_the_weighted_sum_of_the_streams(fused_dir, streams, raw_windows):
    from sttr.realtime.engines import open_engine

    info = read_bundle(fused_dir)
    assert (info.input.C, info.input.preprocess["bones"]) == (3, "none")  # one joints window feeds both streams
    x = PreprocessSpec.from_dict(info.input.preprocess).apply_batch(raw_windows)
    expected = _separately(streams, raw_windows)
    one_person = x.copy()
    one_person[..., 1:] = 0.0
    for backend in ("onnxruntime", "torch"):
        with open_engine(fused_dir, backend) as engine:
            got = engine.run(x)
            assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max()), backend
            assert (got.argmax(1) == expected.argmax(1)).all()
            # windows with one person go through the single-person graph (onnxruntime) and still match
            single = engine.run(one_person)
            raw_one = raw_windows.copy()
            raw_one[..., 1:] = 0.0
            full = _separately(streams, raw_one)
            assert np.abs(single - full).max() < 1e-3 * max(1.0, np.abs(full).max()), backend


def test_bundle_json_records_the_streams_and_hashes_their_checkpoints(fused_dir, streams):
    data = json.loads((fused_dir / "bundle.json").read_text())
    assert data["model"]["source"] == "fusion" and data["model"]["name"] == "joints + bones"
    assert [s["checkpoint_file"] for s in data["model"]["streams"]] == ["joints.pt", "bones.pt"]
    assert [s["config"]["in_channels"] for s in data["model"]["streams"]] == [3, 6]
    assert data["fusion"] == {"window_bones": "none", "streams": [
        {"checkpoint": "stream1.pt", "weight": 1.0, "bones": "none", "legacy_bones": False},
        {"checkpoint": "stream2.pt", "weight": 0.6, "bones": "merge", "legacy_bones": False}]}
    assert data["checkpoint"] is None and "model.p1.onnx" in data["files"]
    assert {"stream1.pt", "stream2.pt"} <= set(data["files"])
    assert data["export"]["parity"]["passed"]


def test_a_changed_stream_checkpoint_is_refused(fused_dir, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(fused_dir, copy)
    with open(copy / "stream2.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(BundleIntegrityError, match="stream2.pt changed"):
        read_bundle(copy)


def test_int8_calibration_of_a_fused_bundle_keeps_its_streams(fused_dir, ntu_dir, tmp_path):
    from sttr.calibration.calibrate_bundle import CalibrateOptions, calibrate_bundle
    from sttr.realtime.engines import open_engine

    if ntu_dir is None:
        pytest.skip("real NTU .skeleton samples not found (../shared/data/ntu60)")
    copy = tmp_path / "b"
    shutil.copytree(fused_dir, copy)
    calibrate_bundle(copy, CalibrateOptions(data=ntu_dir, samples=24))
    info = read_bundle(copy)  # verifies every hash, the stream checkpoints included
    assert {"int8", "p1.int8"} <= set(info.data["models"]) and info.fusion["streams"][1]["checkpoint"] == "stream2.pt"
    with open_engine(copy, "onnxruntime", "int8") as engine:
        assert engine.run(np.zeros((2, 3, T, 25, 2), np.float32)).shape == (2, 60)
    with open_engine(copy, "torch") as engine:  # the torch engine still rebuilds the fusion
        assert engine.run(np.zeros((1, 3, T, 25, 2), np.float32)).shape == (1, 60)


def test_streams_of_one_form_keep_it(streams, tmp_path):
    bones = streams[1]
    src = load_fused_source([bones, bones], [0.5, 0.5])
    assert src.preprocess["bones"] == "merge" and src.in_channels == 6


def test_streams_of_one_bones_mode_but_other_legacy_flags_take_joints(streams, tmp_path):
    bones = streams[1]
    legacy = _variant(bones, tmp_path / "legacy_bones.pt", legacy_bones=True)
    src = load_fused_source([bones, legacy])
    assert (src.preprocess["bones"], src.preprocess["legacy_bones"], src.in_channels) == ("none", False, 3)
    assert [t.legacy for t in src.model.transforms] == [False, True]


def _variant(path, dst, **preprocess_changes):
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    return save_checkpoint(dst, model, labels=preprocess_changes.pop("labels", ckpt.labels),
                           preprocess={**ckpt.preprocess, **preprocess_changes})


def test_streams_that_cannot_be_fused_are_named(streams, tmp_path):
    joints, bones = streams
    other_norm = _variant(joints, tmp_path / "legacy.pt", pre_normalization="legacy")
    with pytest.raises(ValueError, match=r"cannot fuse joints.pt and legacy.pt: .*pre_normalization: 'fixed' vs "
                                         r"'legacy'"):
        load_fused_source([joints, other_norm])
    relabelled = _variant(joints, tmp_path / "relabelled.pt", labels=[f"c{i}" for i in range(60)])
    with pytest.raises(ValueError, match=r"different label names \('label 0 drink water' vs 'c0'\)"):
        load_fused_source([joints, relabelled])
    with pytest.raises(ValueError, match="one weight per checkpoint"):
        load_fused_source([joints, bones], [1.0])
    with pytest.raises(ValueError, match="two or more"):
        load_fused_source([joints])


def test_streams_trained_at_other_lengths_need_a_window(streams, tmp_path):
    longer = _variant(streams[0], tmp_path / "t96.pt", window=96)
    src = load_fused_source([streams[0], longer])
    with pytest.raises(ValueError, match=r"trained on windows of \[64, 96\] frames; give .* --window"):
        export_bundle(None, tmp_path / "b", ExportOptions(exporter="legacy", opset=17), source=src)


def test_cli_fuses_and_checks_its_weights(streams, tmp_path, capsys):
    out = tmp_path / "cli"
    assert export_main([str(streams[0]), str(streams[1]), "--weights", "1", "0.5", "--out", str(out),
                        "--exporter", "legacy", "--opset", "17", "--no-single-person", "--samples", "2"]) == 0
    assert "stream1.pt, stream2.pt" in capsys.readouterr().out
    assert read_bundle(out).fusion["streams"][1]["weight"] == 0.5
    for argv, message in (([str(streams[0]), "--weights", "2"], "--weights is for fusing two or more"),
                          ([str(streams[0]), str(streams[1]), "--weights", "1"], "one weight per checkpoint (2)")):
        with pytest.raises(SystemExit) as exit_info:
            export_main([*argv, "--out", str(tmp_path / "x")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
