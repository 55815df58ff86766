"""INT8: explicit Q/DQ graph with per-channel weight scales, calibrated on real windows; floors; atomic updates."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnx import numpy_helper  # noqa: E402

from sttr.calibration.calibration_data import load_windows, split_holdout  # noqa: E402
from sttr.calibration.calibrate_bundle import AgreementFloorError, CalibrateOptions, calibrate_bundle  # noqa: E402
from sttr.calibration.cli.calibrate import main as calibrate_main  # noqa: E402
from sttr.model.bundle import read_bundle  # noqa: E402


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_int8_graph_has_qdq_nodes_and_per_channel_weight_scales(calibrated_dir):
    graph = onnx.load(str(calibrated_dir / "model.int8.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    per_channel = 0
    kept_float = set(read_bundle(calibrated_dir).data["calibration"]["int8"]["float_raw_concat_nodes"])
    for conv in (n for n in graph.node if n.op_type == "Conv"):
        dq = producers.get(conv.input[1])
        if conv.name in kept_float:  # reads raw coordinates concatenated with features: float by design
            assert dq is None or dq.op_type != "DequantizeLinear", f"{conv.name} should have stayed float"
            continue
        assert dq is not None and dq.op_type == "DequantizeLinear", f"conv {conv.name} weight is not quantized"
        weight = numpy_helper.to_array(inits[dq.input[0]])
        scale = numpy_helper.to_array(inits[dq.input[1]])
        assert weight.dtype == np.int8
        if scale.size > 1:
            per_channel += 1
            assert scale.shape == (weight.shape[0],)  # one scale per output channel
    assert per_channel > 5
    # activations: symmetric int8 (zero point 0), as TensorRT requires
    zps = [numpy_helper.to_array(inits[n.input[2]]) for n in graph.node if n.op_type == "QuantizeLinear"]
    assert all(z.dtype == np.int8 and not z.any() for z in zps)
    # every DequantizeLinear dequantizes int8: TensorRT's ONNX parser refuses INT32 (ONNX Runtime's quantized biases)
    dq_inputs = [inits[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert dq_inputs and all(i.data_type == onnx.TensorProto.INT8 for i in dq_inputs)


def test_layers_reading_raw_coordinates_next_to_features_stay_float(calibrated_dir):
    """concat_original joins raw coordinates to the 4th unit's input: its direct readers are not quantized."""
    from sttr.calibration.int8 import raw_concat_consumers

    fp32 = onnx.load(str(calibrated_dir / "model.onnx"))
    if not any(n.op_type == "Concat" for n in fp32.graph.node):
        pytest.skip("this model has no concat_original")
    named = read_bundle(calibrated_dir).data["calibration"]["int8"]["float_raw_concat_nodes"]
    assert named and named == raw_concat_consumers(fp32)
    # independently of the graph walk: the 4th unit's 1x1 residual conv reads the 3rd unit's features plus the raw
    # coordinates (its Cin counts both), so its weight is (Cout, Cin, 1, 1), or (Cin, Cout) where the export form
    # wrote it as a channels-last MatMul; it must be among them, in float
    from sttr.model.config import STTRConfig

    cfg = STTRConfig.from_dict(read_bundle(calibrated_dir).data["model"]["config"])
    cin, cout, _, _ = cfg.units()[3]
    assert cin == cfg.units()[2][1] + cfg.in_channels
    graph = onnx.load(str(calibrated_dir / "model.int8.onnx")).graph
    nodes, inits = {n.name: n for n in graph.node}, {i.name: i for i in graph.initializer}
    weights = [inits.get(nodes[name].input[1]) for name in named]
    assert all(w is not None and w.data_type == onnx.TensorProto.FLOAT for w in weights)
    shapes = [list(w.dims) for w in weights]
    assert [cout, cin, 1, 1] in shapes or [cin, cout] in shapes


def test_int8_runs_and_the_report_is_its_agreement_on_held_out_real_windows(calibrated_dir, ntu_dir):
    info = read_bundle(calibrated_dir)
    ws = load_windows(ntu_dir, T=64, M=2, preprocess=info.input.preprocess)
    _, held = split_holdout(ws, 0.5, 0)  # the split calibrate_bundle used (same defaults)
    fp32 = _run(calibrated_dir / "model.onnx", held.windows)
    int8 = _run(calibrated_dir / "model.int8.onnx", held.windows)
    assert int8.shape == fp32.shape and np.isfinite(int8).all()
    agreement = float((fp32.argmax(1) == int8.argmax(1)).mean())
    report = info.data["calibration"]["int8"]
    assert report["held_out"]["n"] == len(held) and report["calibration_windows"] == len(ws) - len(held)
    assert report["held_out"]["top1_agreement"] == pytest.approx(agreement)
    assert report["held_out"]["max_abs_logit_diff"] == pytest.approx(float(np.abs(fp32 - int8).max()), rel=1e-4)
    # an untrained nano network (8 channels, tiny logit margins) is the hard case; trained models reach >= 0.99
    # (benchmarks/engines.py measures that)
    assert agreement >= 0.6


def test_onnxruntime_engine_runs_the_int8_graph_with_uint8_activations(calibrated_dir, ntu_dir):
    """The CPU engine rewrites int8 activations to uint8 (exact in meaning; more convs become integer kernels):
    its logits stay those of the file's own session up to float rounding around the convs it now runs in int32."""
    from sttr.realtime.engines import open_engine
    from sttr.realtime.engines.uint8_activations import uint8_activation_model

    info = read_bundle(calibrated_dir)
    x = load_windows(ntu_dir, T=64, M=2, preprocess=info.input.preprocess).windows[:12]
    _, changed = uint8_activation_model(calibrated_dir / "model.int8.onnx")
    assert changed > 10
    engine = open_engine(calibrated_dir, backend="onnxruntime", precision="int8", device="cpu", single_person=False)
    got, plain = engine.run(x), _run(calibrated_dir / "model.int8.onnx", x)
    scale = max(1.0, float(np.abs(plain).max()))
    assert np.abs(got - plain).max() <= 0.05 * scale
    assert (got.argmax(1) == plain.argmax(1)).mean() >= 0.9


def test_temperature_is_fitted_and_recorded(calibrated_dir):
    data = json.loads((calibrated_dir / "bundle.json").read_text())
    t = data["calibration"]["temperature"]
    assert data["temperature"] == t["temperature"] > 0
    assert t["nll_after"] <= t["nll_before"] + 1e-9 and {"ece_before", "ece_after"} <= set(t)


@pytest.fixture
def int8_disagrees(monkeypatch):
    """INT8 logits negated where the held-out windows are scored: top-1 agreement far below any floor (the nano
    model's real INT8 error may be nil)."""
    import sttr.calibration.calibrate_bundle as module

    real = module.onnx_logits
    monkeypatch.setattr(module, "onnx_logits", lambda path, *a, **kw: (-1.0 if "int8" in str(path) else 1.0)
                        * real(path, *a, **kw))


def test_floor_failure_says_by_how_much_and_leaves_the_bundle_unchanged(bundle_dir, ntu_dir, tmp_path,
                                                                         int8_disagrees):
    if ntu_dir is None:
        pytest.skip("real NTU .skeleton samples not found")
    work = tmp_path / "b"
    shutil.copytree(bundle_dir, work)
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    with pytest.raises(AgreementFloorError, match=r"is 0\.\d{4} on \d+ held-out windows, below the floor 0\.9900 by "
                                                  r"0\.\d{4} \([1-9]\d* windows disagree\)"):
        calibrate_bundle(work, CalibrateOptions(data=ntu_dir, samples=8, min_agreement=0.99, fp16=True))
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before  # no new, changed or temp files
    read_bundle(work)


def test_cli_floor_failure_returns_1(bundle_dir, ntu_dir, tmp_path, capsys, int8_disagrees):
    if ntu_dir is None:
        pytest.skip("real NTU .skeleton samples not found")
    work = tmp_path / "b"
    shutil.copytree(bundle_dir, work)
    assert calibrate_main([str(work), "--data", str(ntu_dir), "--samples", "8", "--min-agreement", "0.99"]) == 1
    assert "below the floor" in capsys.readouterr().err
    assert not (work / "model.int8.onnx").exists()


def test_data_that_does_not_fit_the_bundle_is_refused(bundle_dir, tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((4, 3, 64, 18, 2), dtype=np.float32))
    with pytest.raises(Exception, match=r"V = 18 \(needs 25\) - data of another skeleton layout"):
        calibrate_bundle(bundle_dir, CalibrateOptions(data=tmp_path))


def test_a_report_bundle_json_cannot_hold_leaves_the_bundle_as_it_was(bundle_dir, ntu_dir, tmp_path, monkeypatch):
    """Calibration files moved into place before bundle.json failed to write left an unloadable bundle."""
    import sttr.calibration.calibrate_bundle as module

    if ntu_dir is None:
        pytest.skip("real NTU .skeleton samples not found")
    work = tmp_path / "b"
    shutil.copytree(bundle_dir, work)
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    real = module.compare_logits
    monkeypatch.setattr(module, "compare_logits", lambda *a, **kw: {**real(*a, **kw), "max_abs_logit_diff": np.nan})
    with pytest.raises(ValueError, match=r"non-finite numbers .*; bundle .* unchanged"):
        calibrate_bundle(work, CalibrateOptions(data=ntu_dir, samples=8, fp16=True))
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before
    read_bundle(work)


def test_cli_reports_only_what_it_fitted(calibrated_dir, ntu_dir, tmp_path, capsys):
    work = tmp_path / "b"
    shutil.copytree(calibrated_dir, work)
    assert calibrate_main([str(work), "--data", str(ntu_dir), "--samples", "8", "--no-temperature"]) == 0
    out = capsys.readouterr().out
    assert "int8: top-1 agreement" in out and "temperature" not in out  # the old fit is kept, not re-announced


def test_calibration_data_normalised_otherwise_is_warned(bundle_dir, tmp_path, caplog):
    import pickle

    from ._models import T, preprocess_dict

    split = tmp_path / "split"
    split.mkdir()
    np.save(split / "test_data.npy", np.random.default_rng(0).normal(size=(8, 3, T, 25, 2)).astype(np.float32))
    with open(split / "test_label.pkl", "wb") as f:
        pickle.dump(([f"s{i}" for i in range(8)], [i % 3 for i in range(8)]), f)
    meta = {"layout": "ntu25", "preprocess": {**preprocess_dict(), "pre_normalization": "none"}}
    (split / "test_meta.json").write_text(json.dumps(meta))
    work = tmp_path / "b"
    shutil.copytree(bundle_dir, work)
    with caplog.at_level("WARNING"):
        calibrate_bundle(work, CalibrateOptions(data=split, samples=4, temperature=False))
    assert "normalised otherwise than" in caplog.text and "pre_normalization 'fixed' vs 'none'" in caplog.text
