"""A dynamic-T bundle records which window lengths its network takes (`input.T_rule`), so a wrong T is refused up
front naming the rule (it was a raw ONNX Runtime error from deep inside the graph); networks without a simple rule
are exported with a fixed window."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from sttr.calibration.bundle_writer import time_rule  # noqa: E402
from sttr.model.bundle import BundleMismatchError, InputSpec, read_bundle  # noqa: E402
from sttr.model.config import preset  # noqa: E402
from sttr.model.sttr import STTR  # noqa: E402

from ._models import make_bundle  # noqa: E402


def test_rules_of_the_model_family():
    def rule(name, **kw):
        return time_rule([STTR(preset(name, num_classes=5, **kw))])

    assert rule("s-tr") == {"min": 1, "multiple": 1}
    assert rule("t-tr") == {"min": 4, "multiple": 4}  # odd V: the stride-2 attention units need T % 4 == 0
    assert rule("t-tr", layout="openpose18") == {"min": 1, "multiple": 1}
    with pytest.raises(ValueError, match="exactly T=32 frames.*--window 32"):
        rule("t-tr", relative=True, relative_frames=32)


def test_a_dynamic_bundle_refuses_a_length_its_network_cannot_take(nano_checkpoint, tmp_path):
    from sttr.realtime.engines import open_engine

    bundle = make_bundle(tmp_path / "dyn", nano_checkpoint, None, dynamic_time=True, samples=2)
    assert bundle["input"]["T"] is None and bundle["input"]["T_rule"] == {"min": 4, "multiple": 4}
    info = read_bundle(tmp_path / "dyn")
    assert info.input.describe_t() == "a multiple of 4"
    with pytest.raises(BundleMismatchError, match="T: bundle takes a multiple of 4 frames"):
        info.check_input(InputSpec(C=3, T=30, V=25, M=2))
    engine = open_engine(tmp_path / "dyn", "onnxruntime")
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 25, 2)).astype(np.float32) * 0.3
    assert engine.run(x).shape == (1, 60)
    with pytest.raises(BundleMismatchError, match=r"takes windows of a multiple of 4 frames .* \(1, 3, 30, 25, 2\)"):
        engine.run(x[:, :, :30])


def test_malformed_rules_are_refused():
    with pytest.raises(Exception, match="T_rule must be"):
        InputSpec.from_dict({"C": 3, "T": None, "V": 25, "M": 2, "T_rule": {"min": 0, "multiple": 4}})
    assert InputSpec.from_dict({"C": 3, "T": None, "V": 25, "M": 2}).time_problem(7) is None  # older bundles
