"""`sttr convert` and `sttr attention` on the files they are given: the input is never overwritten, an existing
--out needs --overwrite, --set values are type-checked, folders and damaged files are named for what they are."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from sttr.model.checkpoint import load_checkpoint, save_checkpoint
from sttr.model.cli import attention as attention_cli
from sttr.model.cli import convert as convert_cli
from sttr.model.config import preset
from sttr.model.convert import check_overrides
from sttr.model.sttr import STTR


@pytest.fixture(scope="module")
def reference(shared_reference, tmp_path_factory):
    golden = torch.load(shared_reference / "golden" / "S-TR_T64.pt", weights_only=False)
    path = tmp_path_factory.mktemp("ref") / "S-TR_T64.pt"
    torch.save(golden["state_dict"], path)
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_convert_never_overwrites_its_input(reference, tmp_path, capsys):
    before = _digest(reference)
    link = tmp_path / "link.pt"
    link.symlink_to(reference)
    for out, extra in ((reference, []), (reference, ["--overwrite"]), (link, ["--overwrite"])):
        assert convert_cli.main([str(reference), "--out", str(out), *extra]) == 2
        assert "is the reference checkpoint being converted" in _one_line(capsys)
    assert _digest(reference) == before


def test_convert_needs_overwrite_for_an_existing_out(reference, tmp_path, capsys):
    out = tmp_path / "ours.pt"
    out.write_bytes(b"keep me")
    assert convert_cli.main([str(reference), "--out", str(out)]) == 2
    assert "already exists (pass --overwrite" in _one_line(capsys) and out.read_bytes() == b"keep me"
    assert convert_cli.main([str(reference), "--out", str(out), "--overwrite", "--set", "dropout=1e-3"]) == 0
    assert load_checkpoint(out).config.dropout == pytest.approx(1e-3)
    assert convert_cli.main([str(reference), "--out", str(tmp_path)]) == 2
    assert "is a folder" in _one_line(capsys)


@pytest.mark.parametrize("setting, says", [
    ("dropout=abc", "override dropout: expected a number, got 'abc'"),
    ("num_heads=abc", "override num_heads: expected an integer"),
    ("num_heads=true", "override num_heads: expected an integer"),
    ("num_joints=abc", "override num_joints: expected an integer"),
    ("window_blocks=[1,2]", "override window_blocks: expected a list of 3 integers"),
    ("agcn_graph=fixed", "override agcn_graph: expected one of ['skeleton', 'constant']"),
    ("layout=3", "override layout: expected a string or a mapping"),
])
def test_set_values_are_type_checked(reference, tmp_path, capsys, setting, says):
    out = tmp_path / "x.pt"
    assert convert_cli.main([str(reference), "--out", str(out), "--set", setting]) == 1
    assert says in _one_line(capsys) and not out.exists()


def test_set_value_that_is_not_yaml_is_one_line(reference, tmp_path):
    with pytest.raises(SystemExit, match=r"^sttr convert: --set 'layout=\[': the value is not a YAML scalar"):
        convert_cli.main([str(reference), "--out", str(tmp_path / "x.pt"), "--set", "layout=["])


def test_check_overrides_widens_and_reads_exponents():
    got = check_overrides({"dropout": 0, "key_factor": "1e-1", "window_blocks": [1, 2, 3], "layout": "ntu25"})
    assert got == {"dropout": 0.0, "key_factor": 0.1, "window_blocks": (1, 2, 3), "layout": "ntu25"}
    assert isinstance(got["dropout"], float)


def test_convert_names_an_sttr_checkpoint_a_damaged_one_and_a_bundle_folder(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "nano.pt", STTR(preset("nano", num_classes=5)))
    assert convert_cli.main([str(ckpt), "--out", str(tmp_path / "y.pt")]) == 1
    assert "already an sttr checkpoint" in _one_line(capsys)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[:ckpt.stat().st_size // 2])
    assert convert_cli.main([str(cut), "--out", str(tmp_path / "y.pt")]) == 1
    assert "not a readable sttr checkpoint, truncated or corrupt" in _one_line(capsys)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    assert convert_cli.main([str(bundle), "--out", str(tmp_path / "y.pt")]) == 2
    err = _one_line(capsys)
    assert "is a bundle folder" in err and "sttr eval" in err and "does not exist" not in err


@pytest.fixture()
def nano_files(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "nano.pt", STTR(preset("nano", num_classes=5, attention="spatial")).eval())
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 3, 8, 25, 2)).astype(np.float32))
    return ckpt, tmp_path / "x.npy"


@pytest.mark.parametrize("extra, says", [
    (["--index", "5"], "--index must be in [0, 2)"),
    (["--person", "3"], "person must be in [0, 2)"),
    (["--size", "0"], "--size must be at least"),
])
def test_failed_attention_leaves_no_output_folder(nano_files, tmp_path, capsys, extra, says):
    ckpt, sample = nano_files
    out = tmp_path / "maps"
    assert attention_cli.main([str(ckpt), "--sample", str(sample), "--out", str(out), *extra]) != 0
    assert says in _one_line(capsys) and not out.exists()


def test_attention_on_a_wrong_shape_or_a_ttr_model_leaves_no_output_folder(nano_files, tmp_path, capsys):
    ckpt, _ = nano_files
    np.save(tmp_path / "v20.npy", np.zeros((3, 8, 20, 2), np.float32))
    out = tmp_path / "maps"
    assert attention_cli.main([str(ckpt), "--sample", str(tmp_path / "v20.npy"), "--out", str(out)]) == 1
    assert "STTR expects" in _one_line(capsys) and not out.exists()
    ttr = save_checkpoint(tmp_path / "ttr.pt", STTR(preset("nano", num_classes=5, attention="temporal")))
    assert attention_cli.main([str(ttr), "--sample", str(tmp_path / "x.npy"), "--out", str(out)]) == 1
    assert "no spatial attention" in _one_line(capsys) and not out.exists()


def test_attention_names_a_bundle_folder(nano_files, tmp_path, capsys):
    _, sample = nano_files
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    (bundle / "model.pt").write_bytes(b"")
    assert attention_cli.main([str(bundle), "--sample", str(sample), "--out", str(tmp_path / "maps")]) == 2
    err = _one_line(capsys)
    assert "is a bundle folder" in err and str(bundle / "model.pt") in err
