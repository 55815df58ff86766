"""Our checkpoint format: atomic save, weights-only load, exact round trip, refusal of foreign files."""
from __future__ import annotations

import pytest
import torch

from sttr.model.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from sttr.model.config import preset
from sttr.model.sttr import STTR


def test_round_trip_reproduces_logits(tmp_path):
    torch.manual_seed(0)
    model = STTR(preset("nano", num_classes=3)).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, labels=["a", "b", "c"], preprocess={"window": 16},
                           meta={"epoch": 2, "top1": 0.5})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["layout"]["name"] == "ntu25"
    ckpt = load_checkpoint(path)
    assert ckpt.labels == ["a", "b", "c"] and ckpt.meta["epoch"] == 2 and ckpt.preprocess == {"window": 16}
    again = ckpt.build_model()
    assert not again.training and again.config == model.config
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_wrong_label_count_and_foreign_file(tmp_path):
    model = STTR(preset("nano", num_classes=3))
    with pytest.raises(ValueError, match="3 labels"):
        save_checkpoint(tmp_path / "m.pt", model, labels=["a"])
    torch.save({"fcn.weight": torch.zeros(3, 4, 1)}, tmp_path / "ref.pt")
    with pytest.raises(ValueError, match="sttr convert"):
        load_checkpoint(tmp_path / "ref.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")
