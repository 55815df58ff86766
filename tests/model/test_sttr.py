"""STTR: shapes for every preset and layout, gradients, determinism, bad input, empty-person skip, lengths."""
from __future__ import annotations

import pytest
import torch

from sttr.model.config import PRESETS, preset
from sttr.model.skeleton import get_layout
from sttr.model.sttr import STTR

LAYOUTS = ["ntu25", "openpose18", "kinect20", "coco17", "mediapipe33"]
TINY = {"base_channels": 8, "num_heads": 2, "num_classes": 7}


def tiny(name: str, layout: str = "ntu25", **kw) -> STTR:
    v = get_layout(layout).num_joints
    torch.manual_seed(0)
    return STTR(preset(name, layout=layout, num_joints=v, **{**TINY, **kw}))


def window(cfg, n=2, t=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, cfg.in_channels, t, cfg.num_joints, cfg.num_persons, generator=g)


GRID = [(name, "ntu25") for name in sorted(set(PRESETS) - {"sttr-nano"})] + [
    (name, layout) for name in ("nano", "t-tr", "s-tr-agcn") for layout in LAYOUTS[1:]]


@pytest.mark.parametrize("name, layout", GRID)
def test_every_preset_on_every_layout(name, layout):
    model = tiny(name, layout).eval()
    x = window(model.config)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    assert feats.shape == (2, model.out_channels)


@pytest.mark.parametrize("extra", [
    {}, {"graph_conv": "agcn"}, {"relative": True, "relative_frames": 16}, {"more_channels": True},
    {"spatial_only_attention": False, "temporal_only_attention": False}, {"attention_skip": False},
    {"attention_in_all_layers": True, "window_blocks": (4, 4, 4)}, {"mask_learning": False},
    {"attention_input_norm": False, "input_norm": False, "concat_original": False},
])
def test_gradients_reach_every_parameter(extra):
    model = tiny("nano", **extra).train()
    x = window(model.config, t=16)
    model(x).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero


@pytest.mark.parametrize("name", ["s-tr", "t-tr", "s-tr-agcn"])
def test_in_place_relus_give_the_gradients_of_out_of_place_ones(name, monkeypatch):
    # the ReLUs after batch norm run in place (batch norm's backward reads its input, not its output); the same
    # training step with every in-place ReLU made out-of-place must give the same loss, gradients and statistics
    def step(model):
        torch.manual_seed(1)  # the same dropout and drop-connect draws
        loss = torch.nn.functional.cross_entropy(model(window(model.config, t=16)), torch.tensor([1, 2]))
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters()}, \
            {n: b.clone() for n, b in model.named_buffers()}

    in_place = step(tiny(name).train())
    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.functional, "relu_", torch.nn.functional.relu)
        out_of_place = step(tiny(name).train())
    torch.testing.assert_close(in_place[0], out_of_place[0], rtol=0, atol=0)
    for a, b in zip(in_place[1:], out_of_place[1:]):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_deterministic_in_eval():
    model = tiny("nano").eval()
    x = window(model.config)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    assert torch.equal(tiny("nano").state_dict()["head.weight"], model.state_dict()["head.weight"])


@pytest.mark.parametrize("name", ["nano", "s-tr", "t-tr"])
def test_empty_second_person_skip_equals_full_computation(name):
    model = tiny(name).eval()
    x = window(model.config, n=3, t=16)
    x[1, ..., 1] = 0  # sample 1: absent second person
    x[2, ..., 0] = 0  # sample 2: absent first person
    with torch.no_grad():
        fast = model(x)
        model.train(False)
        full = model.head(model._trunk(*model._fold(x)).view(3, 2, -1).mean(1))
    assert torch.allclose(fast, full, atol=1e-5, rtol=1e-5)


def test_empty_person_cache_follows_parameter_changes():
    model = tiny("nano").eval()
    x = window(model.config)
    x[..., 1] = 0
    with torch.no_grad():
        before = model(x)
        model.input_norm.bias.add_(0.5)  # changes the constant feature of the empty person
        after = model(x)
        full = model.head(model._trunk(*model._fold(x)).view(2, 2, -1).mean(1))
    assert not torch.allclose(before, after)
    assert torch.allclose(after, full, atol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(2, 3, 16, 25), "N, C, T, V, M"),
    (torch.zeros(2, 3, 16, 18, 2), "V=25"),
    (torch.zeros(2, 6, 16, 25, 2), "C=3"),
    (torch.zeros(2, 3, 16, 25, 1), "M=2"),
])
def test_bad_shapes_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny("nano")(bad)


def test_nan_and_inf_are_refused():
    model = tiny("nano").eval()
    x = window(model.config)
    x[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    x[0, 0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="inf"):
        model(x)


def test_windows_of_another_float_dtype_are_converted_to_the_weights_dtype():
    """A float64 window (numpy's default) failed deep inside with "expected scalar type Double but found Float"."""
    model = tiny("nano").eval()
    x = window(model.config)
    with torch.no_grad():
        assert torch.equal(model(x.double()), model(x)) and model(x.double()).dtype == torch.float32
        assert model.double()(x).dtype == torch.float64
    with pytest.raises(ValueError, match="floating-point window"):
        model(x.long())


@pytest.mark.parametrize("t", [63, 62, 30])
def test_temporal_attention_needs_t_divisible_by_4_for_odd_v(t):
    model = tiny("t-tr").eval()
    with pytest.raises(ValueError, match="divisible by 4"):
        model(window(model.config, t=t))


@pytest.mark.parametrize("t", [63, 17, 1])
def test_spatial_model_and_even_v_accept_any_length(t):
    s_tr = tiny("s-tr").eval()
    t_tr_even = tiny("t-tr", layout="openpose18").eval()  # even V: 1-tap strided qkv, lengths agree
    with torch.no_grad():
        assert s_tr(window(s_tr.config, t=t)).shape == (2, 7)
        assert t_tr_even(window(t_tr_even.config, t=t)).shape == (2, 7)


def test_relative_temporal_attention_needs_its_length():
    model = tiny("t-tr", relative=True, relative_frames=32).eval()
    with torch.no_grad():
        assert model(window(model.config, t=32)).shape == (2, 7)
    with pytest.raises(ValueError, match="relative"):
        model(window(model.config, t=16))


def test_return_attention_rows_sum_to_one():
    model = tiny("s-tr").eval()
    x = window(model.config, t=8)
    with torch.no_grad():
        logits, maps = model(x, return_attention=True)
        plain = model(x)
    assert torch.allclose(logits, plain, atol=1e-5)
    assert len(maps) == 6
    assert maps[0].shape == (2, 2, 8, 2, 25, 25) and maps[3].shape == (2, 2, 4, 2, 25, 25)
    assert torch.allclose(maps[0].sum(-1), torch.ones(()), atol=1e-5)


@pytest.mark.slow
def test_trace_export_path_has_no_data_dependent_checks():
    model = tiny("nano").eval()
    x = window(model.config)
    x[..., 1] = 0
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_trace=False)
        y = window(model.config, seed=1)
        assert torch.allclose(traced(y), model(y), atol=1e-5)


def test_empty_person_still_gets_gradients_when_autograd_is_on():
    model = tiny("nano").eval()
    x = window(model.config)
    x[..., 1] = 0
    x.requires_grad_(True)
    model(x).sum().backward()
    assert x.grad[..., 1].abs().sum() > 0  # the absent slot is computed, not taken from the cache
