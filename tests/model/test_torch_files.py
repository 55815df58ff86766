"""Safe loading of user-supplied torch files: harmless extras pass, anything else is a one-line error naming it."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from sttr.model.checkpoint import load_checkpoint
from sttr.model.torch_files import load_torch_file


def test_numpy_scalars_and_dtypes_pass_the_safe_load(tmp_path):
    path = tmp_path / "f.pt"
    torch.save({"score": np.float64(0.5), "epoch": np.int64(3), "dtype": np.dtype("float32"),
                "version": torch.__version__, "w": torch.ones(2)}, path)
    obj = load_torch_file(path)
    assert obj["score"] == 0.5 and obj["epoch"] == 3 and torch.equal(obj["w"], torch.ones(2))


def test_refused_objects_foreign_and_truncated_files_are_named(tmp_path):
    unsafe = tmp_path / "args.pt"
    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, unsafe)
    with pytest.raises(ValueError, match=r"args\.pt: holds argparse\.Namespace besides tensors.*refuses; ask so$"):
        load_torch_file(unsafe, trust_hint="; ask so")
    assert load_torch_file(unsafe, trust=True)["args"].lr == 0.1  # opt-in only
    (tmp_path / "text.pt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"text\.pt: not a training state \(neither the zip"):
        load_torch_file(tmp_path / "text.pt", what="training state")
    (tmp_path / "cut.pt").write_bytes(unsafe.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut\.pt: not a readable checkpoint, truncated or corrupt \(") as err:
        load_torch_file(tmp_path / "cut.pt")
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(FileNotFoundError, match="checkpoint .*none.pt does not exist"):
        load_torch_file(tmp_path / "none.pt")


def test_load_checkpoint_names_a_corrupt_file(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match=r"c\.pt: not a "):
        load_checkpoint(tmp_path / "c.pt")


def test_a_training_state_given_as_a_checkpoint_says_so(tmp_path):
    from sttr.calibration.model_source import load_model_source
    from sttr.model.cli.convert import main as convert_main

    state = tmp_path / "last.pt"
    torch.save({"format": "sttr.train_state/1", "model": {"w": torch.ones(2)}, "epoch": 3}, state)
    hint = "a training state, what `sttr train --resume` continues from; use the run's best.pt"
    with pytest.raises(ValueError,
                       match=r"last\.pt: expected an sttr checkpoint .*found 'sttr.train_state/1' \(" + hint):
        load_checkpoint(state)
    with pytest.raises(ValueError, match=r"last\.pt: a training state \(what `sttr train --resume` continues from\)"):
        load_model_source(state)  # what sttr export reads
    assert convert_main([str(state), "--out", str(tmp_path / "x.pt")]) == 1


def test_a_file_cut_inside_its_zip_records_is_named(tmp_path):
    # torch's zip reader raises OSError (Errno 22, "Invalid argument") here, not the RuntimeError of a shorter cut
    path = tmp_path / "best.pt"
    torch.save({"a": torch.zeros(20000), "b": torch.ones(20000)}, path)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:20000])
    with pytest.raises(ValueError, match=r"cut\.pt: not a readable checkpoint, truncated or corrupt \(") as err:
        load_torch_file(tmp_path / "cut.pt")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"cut\.pt: not a readable checkpoint, truncated or corrupt \("):
        load_torch_file(tmp_path / "cut.pt", trust=True)  # the trusted load too


def test_a_folder_is_named_as_a_folder(tmp_path):
    from sttr.model.torch_files import load_torch_file

    with pytest.raises(ValueError, match=r"is a folder; expected a checkpoint file \(.pt\)"):
        load_torch_file(tmp_path)
    (tmp_path / "bundle.json").write_text("{}")
    with pytest.raises(ValueError, match=r"is a bundle folder, not a checkpoint file \(bundles are taken by"):
        load_torch_file(tmp_path)
