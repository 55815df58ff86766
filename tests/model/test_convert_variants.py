"""Converter on every variant: reference-named weights of a random STTR convert back to the same config and logits."""
from __future__ import annotations

import pytest
import torch

from sttr.model.config import preset
from sttr.model.convert import load_reference_checkpoint
from sttr.model.sttr import STTR

from ._reference_keys import to_reference

SMALL = {"num_classes": 11, "base_channels": 16}  # the bones cases keep 64 (the converter reads 128 as double width)
CASES = {
    "s-tr-agcn": ("s-tr-agcn", {"agcn_graph": "constant"}, 16),
    "t-tr-agcn-bones": ("t-tr-agcn-bones", {"agcn_graph": "constant", "base_channels": 64}, 8),
    "s-tr-bones": ("s-tr-bones", {"base_channels": 64}, 8),
    "st-gcn": ("st-gcn", {}, 16),
    "t-tr-kinetics": ("t-tr", {"layout": "openpose18", "num_joints": 18, "num_classes": 400}, 18),
    "s-tr-relative": ("s-tr", {"relative": True}, 8),
    "t-tr-relative": ("t-tr", {"relative": True, "relative_frames": 32}, 32),
    "t-tr-more-channels": ("t-tr", {"more_channels": True}, 16),
    "s-tr-more-channels": ("s-tr", {"more_channels": True}, 16),
    "augmented": ("nano", {"spatial_only_attention": False, "temporal_only_attention": False,
                           "num_heads": 4}, 16),
    "all-layers": ("nano", {"attention_in_all_layers": True, "window_blocks": (8, 30, 75), "num_heads": 4}, 16),
    "all-layers-relative": ("t-tr", {"attention_in_all_layers": True, "window_blocks": (8, 30, 75),
                                     "relative": True, "relative_frames": 16, "num_heads": 4}, 16),
    "no-skip-no-norm": ("t-tr", {"attention_skip": False, "attention_input_norm": False}, 16),
    "no-mask-no-concat": ("t-tr", {"mask_learning": False, "concat_original": False}, 16),
    "augmented-agcn": ("s-tr-agcn", {"spatial_only_attention": False, "agcn_graph": "constant", "num_heads": 4}, 8),
    "gcn-local-bn": ("s-tr", {"gcn_local_bn": True}, 8),
    "graph-distance": ("t-tr", {"graph_mode": "distance"}, 8),
    "graph-uniform": ("st-gcn", {"graph_mode": "uniform", "gcn_local_bn": True}, 8),
    "more-channels-4-heads": ("t-tr", {"more_channels": True, "num_heads": 4, "more_channels_divisor": 2}, 8),
    "s-more-channels-16-heads": ("s-tr", {"more_channels": True, "num_heads": 16, "more_channels_divisor": 8,
                                          "base_channels": 64}, 8),
    "graph-dld-kinetics": ("t-tr", {"graph_mode": "DLD", "layout": "openpose18", "num_joints": 18}, 8),
}
# what the keys cannot tell: given to the converter as overrides, as a user would
UNTOLD = ("num_heads", "dropout", "drop_connect", "agcn_graph", "window_blocks", "input_norm", "attention_skip")


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_named_weights_round_trip(case):
    name, extra, frames = CASES[case]
    torch.manual_seed(0)
    cfg = preset(name, **{**SMALL, **extra})
    model = STTR(cfg).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    overrides = {k: getattr(cfg, k) for k in UNTOLD}
    if cfg.num_joints != 25:
        overrides["layout"] = cfg.layout
    if cfg.graph_mode not in ("spatial", "distance"):  # one graph partition: the keys cannot tell which
        overrides["graph_mode"] = cfg.graph_mode
    converted = load_reference_checkpoint(to_reference(model), **overrides)
    assert converted.config == cfg
    x = torch.randn(2, cfg.in_channels, frames, cfg.num_joints, cfg.num_persons)
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))
