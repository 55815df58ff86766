"""The model API from a user's program: heatmaps of the wrong shape or with NaN, a GIF at 0 fps, checkpoint labels
given as one string, user layouts with malformed entries and a registered layout named with capitals."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sttr.model.checkpoint import save_checkpoint  # noqa: E402
from sttr.model.config import preset  # noqa: E402
from sttr.model.skeleton import LAYOUTS, Layout, get_layout, register_layout  # noqa: E402
from sttr.model.sttr import STTR  # noqa: E402


def _heatmap():
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    from sttr.model import heatmap

    return heatmap


@pytest.mark.parametrize("weights, message", [
    (np.ones((2, 5, 5)), r"got shape \(2, 5, 5\); average or pick the leading axes"),
    (np.ones(5), r"got shape \(5,\)"),
    (np.ones((4, 5)), r"got shape \(4, 5\)"),
    (np.full((3, 3), np.nan), "NaN or infinite"),
    ([["a", "b"], ["c", "d"]], "of numbers"),
])
def test_render_heatmap_names_a_map_it_cannot_draw(tmp_path, weights, message):
    with pytest.raises(ValueError, match=message):
        _heatmap().render_heatmap(weights, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_render_heatmap_takes_lists_and_tensors_and_names_a_missing_folder(tmp_path):
    heatmap = _heatmap()
    assert heatmap.render_heatmap([[1.0, 0.0], [0.0, 1.0]], tmp_path / "a.png", size_px=64).is_file()
    assert heatmap.render_heatmap(torch.eye(3), tmp_path / "b.png", size_px=64).is_file()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        heatmap.render_heatmap(np.eye(3), tmp_path / "no" / "c.png")


@pytest.mark.parametrize("fps", [0, -1.0])
def test_a_gif_at_zero_fps_is_refused_before_anything_is_written(tmp_path, fps):
    heatmap = _heatmap()
    model = STTR(preset("nano", num_classes=3)).eval()
    with pytest.raises(ValueError, match="gif fps must be a positive number"):
        heatmap.render_attention(model, np.zeros((3, 16, 25, 2), np.float32), tmp_path / "maps", gif=True, fps=fps,
                                 size_px=64)
    assert not (tmp_path / "maps").exists()


@pytest.mark.parametrize("labels", ["abc", ["a", 2, "c"]])
def test_checkpoint_labels_must_be_a_list_of_names(tmp_path, labels):
    model = STTR(preset("nano", num_classes=3))
    with pytest.raises(TypeError, match="labels must be a list of class names"):
        save_checkpoint(tmp_path / "m.pt", model, labels=labels)
    assert not (tmp_path / "m.pt").exists()


BASE = {"name": "api_arm", "joints": ["shoulder", "elbow", "wrist"], "center": "shoulder"}


@pytest.mark.parametrize("extra, message", [
    ({"joints": "abc", "parents": [-1, 0, 0]}, "'joints' must be a list, got 'abc'"),
    ({"edges": [["elbow"]]}, r"each entry of 'edges' must be a pair \[a, b\], got \['elbow'\] at 0"),
    ({"edges": {"elbow": "shoulder"}}, "'edges' must be a list"),
    ({"edges": [[7, 0]]}, r"edges\[0\] must be a joint name or an index in \[0, 3\), got 7"),
    ({"parents": [-1, 0.5, 1]}, r"parents\[1\] must be a joint name or an index in \[0, 3\) \(or -1"),
    ({"parents": None}, "'parents' must be a list, got None"),
    ({"parents": [-1, 0, 1], "mirror": ["elbow", "wrist"]}, "each entry of 'mirror' must be a pair"),
    ({"parents": [-1, 0, 1], "channels": "xyz"}, "'channels' must be a list"),
    ({"parents": [-1, 0, 1], "center": True}, "center must be a joint name or an index"),
])
def test_malformed_user_layouts_are_named(extra, message):
    with pytest.raises(ValueError, match=message):
        Layout.from_dict({**BASE, **extra})


def test_a_layout_registered_with_capitals_is_found_by_its_name():
    layout = Layout("ApiHand", ("wrist", "thumb"), (-1, 0), 0)
    register_layout(layout)
    try:
        assert get_layout("ApiHand") is layout
    finally:
        LAYOUTS.pop("ApiHand", None)
