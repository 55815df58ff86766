"""Calibration windows from NTU files, generated splits and .npy folders."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from sttr.calibration.calibration_data import load_windows, split_holdout

from ._models import T, preprocess_dict


def test_ntu_windows_shapes_labels_and_clip_groups(shared_data):
    ws = load_windows(shared_data / "ntu60", T=T, M=2, preprocess=preprocess_dict())
    assert ws.windows.shape[1:] == (3, T, 25, 2) and ws.windows.dtype == np.float32
    assert len(np.unique(ws.groups)) == 10  # ten clips
    first = ws.groups == 0  # S001C001P001R001A001: drink water
    assert (ws.labels[first] == 0).all()
    assert np.isfinite(ws.windows).all() and np.abs(ws.windows).max() < 10  # metres, centred


def test_holdout_never_splits_a_clip(shared_data):
    ws = load_windows(shared_data / "ntu60", T=T, M=2, preprocess=preprocess_dict())
    cal, held = split_holdout(ws, 0.5)
    assert len(cal) + len(held) == len(ws)
    assert not set(cal.groups) & set(held.groups) and len(cal) and len(held)


def test_npy_folder_and_limit(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(3, T, 25, 2)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.normal(size=(4, 3, T, 25, 2)).astype(np.float32))
    ws = load_windows(tmp_path, T=T, M=2)
    assert ws.windows.shape == (5, 3, T, 25, 2) and not ws.has_labels
    assert len(load_windows(tmp_path, T=T, M=2, limit=2)) == 2


def test_generated_split(tmp_path):
    pytest.importorskip("torch")
    data = np.random.default_rng(0).normal(size=(3, 3, T, 25, 2)).astype(np.float32)
    np.save(tmp_path / "test_data.npy", data)
    with open(tmp_path / "test_label.pkl", "wb") as f:
        pickle.dump((["s0", "s1", "s2"], [4, 5, 6]), f)
    ws = load_windows(tmp_path, T=T, M=2)
    assert ws.labels.tolist() == [4, 5, 6]
    np.testing.assert_array_equal(ws.windows, data)


def test_wrong_shape_and_missing_source(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 32, 25, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"windows are \(C, T, V, M\) = \(3, 32, 25, 2\): T = 32 \(needs 64\)$"):
        load_windows(tmp_path, T=T, M=2)
    np.save(tmp_path / "a.npy", np.zeros((3, 64, 15, 1), dtype=np.float32))  # Florence 3D windows, NTU bundle
    with pytest.raises(ValueError, match=r"V = 15 \(needs 25\), M = 1 \(needs 2\) - data of another skeleton "
                                         r"layout\?"):
        load_windows(tmp_path, T=T, M=2, C=3, V=25)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_windows(tmp_path / "nope", T=T, M=2)


@pytest.mark.parametrize("field, value, message", [
    ("samples", 0, r"samples \(--samples\) must be >= 1"),
    ("min_agreement", 99.0, r"min_agreement \(--min-agreement\) is a fraction in \[0, 1\] \(0.99 = 99 %\)"),
    ("holdout", 1.0, r"holdout \(--holdout\) is the fraction of clips held out"),
])
def test_calibrate_options_out_of_range_are_named(field, value, message):
    from sttr.calibration.calibrate_bundle import CalibrateOptions

    with pytest.raises(ValueError, match=message):
        CalibrateOptions(data="x", **{field: value})


def test_non_finite_windows_are_refused(tmp_path):
    w = np.random.default_rng(1).normal(size=(4, 3, T, 25, 2)).astype(np.float32)
    w[2, 0, 5, 3, 0] = np.nan
    np.save(tmp_path / "w.npy", w)
    with pytest.raises(ValueError, match=r"1 of 4 windows hold NaN/inf values \(e.g. window 2\); calibration needs "
                                         r"finite windows"):
        load_windows(tmp_path, T=T, M=2)


def test_one_batch_file_can_be_split_and_files_of_other_shapes_are_named(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(2).normal(size=(6, 3, T, 25, 2)).astype(np.float32))
    cal, held = split_holdout(load_windows(tmp_path, T=T, M=2), 0.5)  # was "need windows from at least 2 clips"
    assert len(cal) == len(held) == 3
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 32, 25, 2), np.float32))
    with pytest.raises(ValueError, match=r"b.npy: windows of \(C, T, V, M\) = \(3, 32, 25, 2\), but a.npy has "
                                         r"\(3, 64, 25, 2\)"):
        load_windows(tmp_path, T=T, M=2)
    (tmp_path / "b.npy").write_text("not numpy")
    with pytest.raises(ValueError, match=r"b.npy: not a readable .npy array of windows"):
        load_windows(tmp_path, T=T, M=2)
