"""read_bundle checks the values bundle.json holds (it has no checksum of its own): labels one string per logit, a
positive temperature, `models`/`files`/`input`/`output` of the right form; a file given for the folder is named."""
from __future__ import annotations

import json

import pytest

from sttr.model.bundle import BundleIntegrityError, InputSpec, read_bundle, write_bundle_json


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not really onnx")
    write_bundle_json(tmp_path, {"input": InputSpec(C=3, T=16, V=25, M=2).to_dict(), "labels": ["a", "b"],
                                 "output": {"name": "logits", "num_classes": 2}, "temperature": 1.5,
                                 "models": {"fp32": "model.onnx"}, "checkpoint": None})
    return tmp_path


def _edit(root, **changes):
    path = root / "bundle.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_a_valid_bundle_reads(bundle):
    info = read_bundle(bundle)
    assert info.labels == ["a", "b"] and info.temperature == 1.5 and info.num_classes == 2


@pytest.mark.parametrize("temperature", [0, -1.0, "abc", True])
def test_a_temperature_that_is_not_positive_is_refused(bundle, temperature):
    _edit(bundle, temperature=temperature)  # 0 was read as 1.0, -1 turned the probabilities upside down
    with pytest.raises(BundleIntegrityError, match="'temperature' must be a positive number"):
        read_bundle(bundle)


def test_a_null_temperature_is_one(bundle):
    _edit(bundle, temperature=None)
    assert read_bundle(bundle).temperature == 1.0


@pytest.mark.parametrize("labels, message", [(["a"], r"1 labels for 2 classes"),
                                             ("ab", "'labels' must be a list of class names"),
                                             ([1, 2], "'labels' must be a list of class names")])
def test_labels_must_be_one_string_per_logit(bundle, labels, message):
    _edit(bundle, labels=labels)
    with pytest.raises(BundleIntegrityError, match=message):
        read_bundle(bundle)


@pytest.mark.parametrize("key, value, message", [
    ("models", ["model.onnx"], "'models' must map each precision to a file name"),
    ("files", [], "'files' must map each file name"),
    ("files", {"model.onnx": "abc"}, r"files\['model.onnx'\] must be"),
    ("input", "x", "'input' must be a map"),
    ("output", {"name": "logits"}, "'output' must be a map with 'num_classes'"),
])
def test_entries_of_the_wrong_form_are_named(bundle, key, value, message):
    _edit(bundle, **{key: value})
    with pytest.raises(BundleIntegrityError, match=message):
        read_bundle(bundle)


def test_a_malformed_input_spec_names_the_fields(bundle):
    data = json.loads((bundle / "bundle.json").read_text())
    data["input"]["C"] = "x"
    (bundle / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match=r"expected C, V, M integers.*'C': 'x'"):
        read_bundle(bundle).input


def test_a_file_given_for_the_bundle_folder_is_named(bundle):
    with pytest.raises(FileNotFoundError, match=r"model.onnx is a file; expected a bundle folder"):
        read_bundle(bundle / "model.onnx")
