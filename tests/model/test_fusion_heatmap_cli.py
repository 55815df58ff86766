"""Fusion, heatmap rendering and the convert / attention CLIs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sttr.model.checkpoint import load_checkpoint, save_checkpoint
from sttr.model.cli import attention as attention_cli
from sttr.model.cli import convert as convert_cli
from sttr.model.config import preset
from sttr.model.fusion import Ensemble, JointsToBones, fuse_scores, stream_transform
from sttr.model.heatmap import render_attention
from sttr.model.sttr import STTR


def _nano(**kw) -> STTR:
    torch.manual_seed(0)
    return STTR(preset("nano", num_classes=5, **kw)).eval()


def test_ensemble_is_the_weighted_sum_of_streams():
    joints, bones = _nano(), _nano(in_channels=6)
    fused = Ensemble([joints, bones], weights=[1.0, 0.5], transforms=[None, JointsToBones("ntu25")]).eval()
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        expected = joints(x) + 0.5 * bones(torch.cat([x, x - x[:, :, :, list(joints.layout.bone_parents)]], 1))
        assert torch.allclose(fused(x), expected, atol=1e-6)
    assert np.allclose(fuse_scores([np.ones((2, 3)), 2 * np.ones((2, 3))], [1, 0.5]), 2.0)
    with pytest.raises(ValueError, match="same classes"):
        Ensemble([joints, STTR(preset("nano", num_classes=4))])


def test_bones_of_the_root_are_zero():
    x = torch.randn(1, 3, 4, 25, 1)
    b = JointsToBones("ntu25", concat=False)(x)
    root = [v for v, p in enumerate(JointsToBones("ntu25").layout.parents) if p < 0]
    assert torch.equal(b[:, :, :, root], torch.zeros_like(b[:, :, :, root]))


@pytest.mark.parametrize("layout", ["ntu25", "openpose18"])  # 3-D joints; 2-D joints with a score channel
@pytest.mark.parametrize("legacy", [False, True])
def test_bones_in_the_graph_equal_the_preprocessed_ones(layout, legacy):
    from sttr.model.preprocess import bones, merge_joints_bones

    x = np.random.default_rng(1).normal(size=(2, 3, 8, 25 if layout == "ntu25" else 18, 2)).astype(np.float32)
    x[..., 1] = 0.0  # an empty person slot stays empty
    expected_bones = bones(x, layout, legacy=legacy)
    with torch.no_grad():
        only = stream_transform(layout, "none", "only", legacy)(torch.from_numpy(x)).numpy()
        merged = stream_transform(layout, "none", "merge", legacy)(torch.from_numpy(x)).numpy()
    assert np.allclose(only, expected_bones, atol=1e-6)
    assert np.allclose(merged, merge_joints_bones(x, expected_bones), atol=1e-6)
    assert not merged[..., 1].any()


def test_stream_transforms_convert_only_from_joints():
    assert stream_transform("ntu25", "merge", "merge") is None
    with pytest.raises(ValueError, match="cannot read windows prepared with bones='merge'"):
        stream_transform("ntu25", "merge", "none")
    with pytest.raises(ValueError, match="unknown bones mode 'both'"):
        stream_transform("ntu25", "none", "both")


def test_heatmaps_have_the_requested_size(tmp_path):
    model = _nano(attention="spatial")
    sample = np.random.default_rng(0).normal(size=(3, 4, 25, 2)).astype(np.float32)
    files = render_attention(model, sample, tmp_path, size_px=120)
    assert len(files) == 6 * (2 + 1)  # 6 SSA layers x (2 heads + mean)
    assert all(f.suffix == ".png" and Image.open(f).size == (120, 120) for f in files)


@pytest.mark.slow
def test_heatmap_gif_has_one_frame_per_attended_frame(tmp_path):
    model = _nano(attention="spatial")
    sample = np.random.default_rng(0).normal(size=(3, 4, 25, 2)).astype(np.float32)
    files = render_attention(model, sample, tmp_path, gif=True, size_px=120)
    gif = Image.open(next(f for f in files if f.suffix == ".gif"))
    assert gif.size == (120, 120) and gif.n_frames == 4


def test_convert_cli_and_attention_cli(tmp_path, shared_reference):
    golden = torch.load(shared_reference / "golden" / "S-TR_T64.pt", weights_only=False)
    ref = tmp_path / "ntu60_xsub_spatial.pt"
    torch.save(golden["state_dict"], ref)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(60)))
    out = tmp_path / "ours.pt"
    assert convert_cli.main([str(ref), "--out", str(out), "--labels", str(labels), "--set", "dropout=0"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.labels[59] == "class 59" and ckpt.config.dropout == 0
    with torch.no_grad():
        assert (ckpt.build_model()(golden["input"]) - golden["logits"]).abs().max() <= 1e-4
    assert convert_cli.main([str(ref), "--out", str(out), "--overwrite", "--set", "bogus=1"]) == 1


def test_attention_cli_on_nano(tmp_path):
    model = _nano(attention="spatial")
    ckpt = save_checkpoint(tmp_path / "nano.pt", model)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 3, 8, 25, 2)).astype(np.float32))
    rc = attention_cli.main([str(ckpt), "--sample", str(tmp_path / "x.npy"), "--index", "1", "--out",
                             str(tmp_path / "maps"), "--size", "160"])
    assert rc == 0 and Image.open(tmp_path / "maps" / "layer5_head0.png").size == (160, 160)


def test_attention_cli_names_a_sample_file_that_is_not_windows(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "nano.pt", _nano(attention="spatial"))
    import pickle

    (tmp_path / "labels.pkl").write_bytes(pickle.dumps((["a"], [0])))
    np.save(tmp_path / "flat.npy", np.zeros(5, np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    for name, says in (("labels.pkl", "not a .npy array of windows"), ("flat.npy", "got shape (5,)"),
                       ("objects.npy", "not a .npy array of windows")):
        rc = attention_cli.main([str(ckpt), "--sample", str(tmp_path / name), "--out", str(tmp_path / "m")])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and err.count("\n") == 1, err
