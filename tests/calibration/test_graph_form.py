"""The export form of a network: head-minor attention channels give the same outputs as the model itself."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sttr.calibration.graph_form import export_form  # noqa: E402
from sttr.model.config import preset  # noqa: E402
from sttr.model.graph import spatial_adjacency  # noqa: E402
from sttr.model.skeleton import get_layout  # noqa: E402
from sttr.model.spatial_attention import SpatialAttention  # noqa: E402
from sttr.model.sttr import STTR  # noqa: E402


def _random_statistics(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("kw", [{}, {"relative": True}, {"more_channels": True, "divisor": 2},
                                {"only_attention": False, "value_factor": 0.5}, {"num_heads": 2}])
def test_head_minor_channels_give_the_same_outputs_and_attention(kw):
    torch.manual_seed(0)
    ssa = SpatialAttention(64, 64, spatial_adjacency(get_layout("ntu25")), **kw)
    _random_statistics(ssa)
    ssa.eval()
    ssa.keep_weights = True
    x = torch.randn(2, 64, 6, 25)
    with torch.no_grad():
        expected, weights = ssa(x), ssa.last_weights
        ssa.use_head_minor_channels()
        ssa.use_head_minor_channels()  # a second call changes nothing
        got = ssa(x)
    assert ssa.head_minor
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ssa.last_weights, weights, atol=1e-6, rtol=1e-5)


def test_head_minor_channels_really_reorder_the_parameters():
    torch.manual_seed(0)
    ssa = SpatialAttention(16, 16, spatial_adjacency(get_layout("ntu25")), num_heads=4)
    before = ssa.qkv.weight.detach().clone()
    ssa.use_head_minor_channels()
    d = ssa.head_key
    # q channel (head 1, dim 0) moves from 1*d + 0 to 0*H + 1; k keeps its order
    torch.testing.assert_close(ssa.qkv.weight[1], before[d])
    torch.testing.assert_close(ssa.qkv.weight[ssa.q_ch:2 * ssa.q_ch], before[ssa.q_ch:2 * ssa.q_ch])


@pytest.mark.parametrize("name,t", [("s-tr", 32), ("s-tr", 33), ("s-tr-agcn", 32), ("nano", 32)])
def test_export_form_is_a_copy_with_the_same_logits(name, t):
    torch.manual_seed(0)
    model = STTR(preset(name, num_classes=10))
    _random_statistics(model)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, t, 25, 2)
    form = export_form(model)
    with torch.no_grad():
        torch.testing.assert_close(form(x), model(x), atol=2e-4, rtol=1e-4)
    assert not form.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # the model is untouched
    units = [m for m in form.modules() if isinstance(m, SpatialAttention)]
    assert units and all(u.head_minor for u in units)
    assert not any(m.head_minor for m in model.modules() if isinstance(m, SpatialAttention))


def test_the_float_residual_reading_raw_coordinates_becomes_a_channels_last_matmul():
    """S-TR's 4th unit reads raw coordinates next to features through a strided 1x1 residual conv that INT8 keeps in
    float; in the export form it is a MatMul over channels-last tokens (BN folded), so ONNX Runtime need not switch
    layouts around it."""
    model = STTR(preset("s-tr", num_classes=10)).eval()
    assert model.config.concat_original and tuple(model.blocks[3].residual.conv.kernel_size) == (1, 1)
    form = export_form(model)
    assert type(form.blocks[3].residual).__name__ == "ChannelsLastPointwise"
    assert form.blocks[3].residual.stride == model.blocks[3].residual.conv.stride[0]
    assert type(form.blocks[6].residual) is type(model.blocks[6].residual)  # the others stay convolutions


def test_separate_projections_give_the_same_outputs_and_must_come_after_the_reordering():
    torch.manual_seed(0)
    ssa = SpatialAttention(64, 64, spatial_adjacency(get_layout("ntu25")))
    _random_statistics(ssa)
    ssa.eval()
    x = torch.randn(2, 64, 6, 25)
    with torch.no_grad():
        expected = ssa(x)
        ssa.use_head_minor_channels()
        ssa.use_separate_projections()
        torch.testing.assert_close(ssa(x), expected, atol=1e-5, rtol=1e-5)
    assert [p.out_channels for p in ssa.qkv_parts] == [ssa.q_ch, ssa.q_ch, ssa.v_ch]
    other = SpatialAttention(64, 64, spatial_adjacency(get_layout("ntu25")))
    other.use_separate_projections()
    with pytest.raises(RuntimeError, match="before use_separate_projections"):
        other.use_head_minor_channels()
