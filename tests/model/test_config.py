"""STTRConfig: presets, dict round trip, unknown keys, validation."""
from __future__ import annotations

import json

import pytest

from sttr.model.config import PRESETS, STTRConfig, preset

REQUIRED = ["s-tr", "t-tr", "s-tr-agcn", "t-tr-agcn", "s-tr-bones", "t-tr-bones", "s-tr-agcn-bones",
            "t-tr-agcn-bones", "st-gcn", "nano"]


@pytest.mark.parametrize("name", REQUIRED)
def test_presets_round_trip_through_json(name):
    cfg = PRESETS[name]
    again = STTRConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_unknown_key_is_named():
    d = PRESETS["s-tr"].to_dict()
    d["Nh"] = 8
    with pytest.raises(ValueError, match="Nh"):
        STTRConfig.from_dict(d)


def test_preset_overrides_and_unknown_preset():
    assert preset("t-tr", num_classes=120).num_classes == 120
    with pytest.raises(ValueError, match="bogus"):
        preset("t-tr", bogus=1)
    with pytest.raises(KeyError, match="no-such"):
        preset("no-such")


def test_a_layout_brings_its_joint_count_unless_one_is_given():
    assert preset("nano", layout="openpose18").num_joints == 18
    assert preset("s-tr", layout="mediapipe33", num_classes=5).num_joints == 33
    with pytest.raises(ValueError, match="has 18 joints but num_joints=25"):
        preset("nano", layout="openpose18", num_joints=25)
    with pytest.raises(ValueError, match="no-such-layout"):
        preset("nano", layout="no-such-layout")


@pytest.mark.parametrize("bad", [{"attention": "sideways"}, {"num_heads": 0}, {"dropout": 1.5},
                                 {"num_joints": 18}, {"layout": "no-such-layout"}, {"agcn_graph": "x"}])
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        STTRConfig(**bad)


def test_bones_presets_double_the_widths():
    assert PRESETS["s-tr-bones"].stage_widths() == (128, 256, 512)
    assert PRESETS["s-tr-bones"].in_channels == 6
    assert PRESETS["s-tr"].units()[3] == (64 + 3, 128, 2, 1)  # concat_original adds the raw coordinates
