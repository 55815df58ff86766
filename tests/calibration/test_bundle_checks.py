"""Reading a bundle checks what bundle.json has no checksum for: its top-level keys (a misspelt `temperature`
was ignored) and its input spec against the ONNX graph's input (ONNX Runtime failed at the first window)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sttr.model.bundle import (KNOWN_KEYS, BundleIntegrityError, BundleMismatchError, InputSpec, read_bundle,
                               write_bundle_json)

onnx = pytest.importorskip("onnx")
DEMO = Path(__file__).resolve().parents[2] / "realtime" / "demo" / "bundle"


def _graph(path: Path, shape: list) -> None:
    """A one-node graph x -> logits whose input has `shape` (ints static, strings symbolic)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["logits"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))


def _bundle(root: Path, graph_shape: list, T: int | None = 32, **extra) -> Path:
    root.mkdir(exist_ok=True)
    _graph(root / "model.onnx", graph_shape)
    spec = InputSpec(C=3, T=T, V=25, M=2)
    write_bundle_json(root, {"input": spec.to_dict(), "output": {"name": "logits", "num_classes": 2},
                             "labels": ["a", "b"], "models": {"fp32": "model.onnx"}, "checkpoint": None, **extra})
    return root


def _edit(root: Path, **changes) -> None:
    data = json.loads((root / "bundle.json").read_text())
    for key, value in changes.items():
        if key.startswith("input."):
            data["input"][key[6:]] = value
        elif value is None:
            data.pop(key)
        else:
            data[key] = value
    (root / "bundle.json").write_text(json.dumps(data))


def test_input_spec_edited_against_the_graph_names_the_axis(tmp_path):
    root = _bundle(tmp_path / "b", ["N", 3, 32, 25, 2])
    read_bundle(root)
    _edit(root, **{"input.T": 64})
    with pytest.raises(BundleMismatchError, match=r"does not match model\.onnx's input: T: bundle\.json says 64, "
                                                  r"model\.onnx takes 32$"):
        read_bundle(root)
    _edit(root, **{"input.T": 32, "input.V": 18, "input.M": 1})
    with pytest.raises(BundleMismatchError, match=r"V: bundle\.json says 18, model\.onnx takes 25; M: bundle\.json "
                                                  r"says 1, model\.onnx takes 2"):
        read_bundle(root)
    read_bundle(root, verify=False)  # a cheap read checks keys only


def test_dynamic_time_in_the_graph_and_in_the_spec(tmp_path):
    read_bundle(_bundle(tmp_path / "dyn", ["N", 3, "T", 25, 2], T=None))
    read_bundle(_bundle(tmp_path / "dyn_graph", ["N", 3, "T", 25, 2], T=32))  # a fixed T fed to a dynamic graph
    with pytest.raises(BundleMismatchError, match="T: bundle.json says any, model.onnx takes 32"):
        read_bundle(_bundle(tmp_path / "fixed", ["N", 3, 32, 25, 2], T=None))


def test_a_file_that_is_no_onnx_model_is_left_to_the_engine(tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    (root / "model.onnx").write_bytes(b"not a graph")
    write_bundle_json(root, {"input": InputSpec(C=3, T=32, V=25, M=2).to_dict(), "labels": ["a", "b"],
                             "output": {"name": "logits", "num_classes": 2}, "models": {"fp32": "model.onnx"}})
    read_bundle(root)


@pytest.mark.parametrize("key, known", [("temperaturex", "temperature"), ("calibratoin", "calibration"),
                                        ("checkpoinT", "checkpoint"), ("colour", None)])
def test_unknown_top_level_key_is_named(tmp_path, key, known):
    root = _bundle(tmp_path / "b", ["N", 3, 32, 25, 2])
    _edit(root, **{key: 2.0})
    hint = rf" \(did you mean '{known}'\?\)" if known else ""
    with pytest.raises(BundleIntegrityError, match=rf"unknown key\(s\) '{key}'{hint}; known keys: format, created"):
        read_bundle(root, verify=False)
    with pytest.raises(BundleIntegrityError, match=key):
        write_bundle_json(root, {**json.loads((root / "bundle.json").read_text())})


def test_every_key_this_project_writes_is_known(tmp_path):
    assert {"format", "created", "model", "input", "output", "labels", "temperature", "files", "models",
            "checkpoint", "export", "calibration", "versions", "fusion"} == set(KNOWN_KEYS)
    if not DEMO.is_dir():
        pytest.skip("no demo bundle")
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    info = read_bundle(copy)  # an older bundle written by this project: keys and graph input as exported
    assert info.input.T == 32
