"""The bundle format (sttr.model.bundle): written, read, verified; tampering and mismatches are clear errors."""
from __future__ import annotations

import hashlib
import json

import pytest

from sttr.model.bundle import (BUNDLE_FORMAT, BundleIntegrityError, BundleMismatchError, InputSpec, read_bundle,
                               write_bundle_json)

PRE = {"layout": "ntu25", "pre_normalization": "fixed", "bones": "none", "window": 64, "fps": 30.0}


def _bundle(tmp_path, **extra):
    (tmp_path / "model.onnx").write_bytes(b"fp32 graph")
    (tmp_path / "model.int8.onnx").write_bytes(b"int8 graph")
    spec = InputSpec(C=3, T=64, V=25, M=2, layout="ntu25", fps=30.0, preprocess=PRE)
    data = {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": 2}, "labels": ["a", "b"],
            "temperature": 1.5, "models": {"fp32": "model.onnx", "int8": "model.int8.onnx"}, "checkpoint": None,
            **extra}
    write_bundle_json(tmp_path, data)
    return tmp_path


def test_round_trip_records_sha256_of_every_file(tmp_path):
    info = read_bundle(_bundle(tmp_path))
    assert info.data["format"] == BUNDLE_FORMAT
    assert info.data["files"]["model.onnx"]["sha256"] == hashlib.sha256(b"fp32 graph").hexdigest()
    assert info.data["files"]["model.int8.onnx"]["bytes"] == len(b"int8 graph")
    assert info.input == InputSpec(C=3, T=64, V=25, M=2, layout="ntu25", fps=30.0, preprocess=PRE)
    assert info.labels == ["a", "b"] and info.temperature == 1.5 and info.precisions == ["fp32", "int8"]


def test_changed_file_is_an_integrity_error_naming_it(tmp_path):
    _bundle(tmp_path)
    (tmp_path / "model.int8.onnx").write_bytes(b"int8 graph, edited")
    with pytest.raises(BundleIntegrityError, match=r"model\.int8\.onnx changed.*sha256"):
        read_bundle(tmp_path)


def test_missing_file_is_an_integrity_error_naming_it(tmp_path):
    _bundle(tmp_path)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(BundleIntegrityError, match=r"model\.onnx is missing"):
        read_bundle(tmp_path)


def test_unknown_format_and_missing_json(tmp_path):
    _bundle(tmp_path)
    data = json.loads((tmp_path / "bundle.json").read_text())
    data["format"] = "sttr.bundle/99"
    (tmp_path / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="sttr.bundle/99"):
        read_bundle(tmp_path)
    with pytest.raises(FileNotFoundError, match="sttr export"):
        read_bundle(tmp_path / "nowhere")


def test_file_names_must_stay_inside_the_bundle(tmp_path):
    _bundle(tmp_path)
    data = json.loads((tmp_path / "bundle.json").read_text())
    data["files"]["../outside.onnx"] = {"sha256": "0" * 64, "bytes": 1}
    (tmp_path / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="relative to the bundle"):
        read_bundle(tmp_path)


@pytest.mark.parametrize("change, field", [
    ({"T": 32}, "T: bundle expects 64"),
    ({"C": 6}, "C: bundle expects 3"),
    ({"M": 1}, "M: bundle expects 2"),
    ({"layout": "openpose18"}, "layout: bundle expects 'ntu25'"),
    ({"fps": 15.0}, "fps: bundle expects 30"),
    ({"preprocess": {**PRE, "bones": "merge"}}, "preprocess.bones: bundle expects 'none'"),
])
def test_spec_mismatch_names_the_field(tmp_path, change, field):
    info = read_bundle(_bundle(tmp_path))
    spec = InputSpec(**{**dict(C=3, T=64, V=25, M=2, layout="ntu25", fps=30.0, preprocess=PRE), **change})
    with pytest.raises(BundleMismatchError, match=field.replace(".", r"\.")):
        info.check_input(spec)


def test_matching_spec_passes_and_lists_compare_like_tuples(tmp_path):
    info = read_bundle(_bundle(tmp_path))
    info.check_input(InputSpec(C=3, T=64, V=25, M=2, layout="ntu25", fps=30.0, preprocess=dict(PRE)))
    info.check_input(InputSpec(C=3, T=64, V=25, M=2, layout="ntu25", fps=None))  # unknown fps, no preprocess


def test_missing_precision_names_what_exists_and_how_to_make_it(tmp_path):
    info = read_bundle(_bundle(tmp_path))
    with pytest.raises(BundleMismatchError, match=r"no fp16 model.*\['fp32', 'int8'\].*sttr calibrate"):
        info.model_path("fp16")


def test_window_shape_check(tmp_path):
    info = read_bundle(_bundle(tmp_path))
    with pytest.raises(BundleMismatchError, match="V: bundle expects 25"):
        info.check_window_shape((1, 3, 64, 18, 2))
