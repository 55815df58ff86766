"""Facts of the reference network (spec §1, §9) that a parity sweep against the reference found missing here;
each is checked without the reference code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sttr.model.config import preset
from sttr.model.graph import spatial_adjacency
from sttr.model.spatial_attention import SpatialAttention
from sttr.model.sttr import STTR


@pytest.mark.parametrize("agcn_graph", ["constant", "skeleton"])
def test_augmented_ssa_of_an_agcn_model_sees_the_adaptive_units_fixed_graph(agcn_graph):
    # The reference's first adaptive unit fills the model-wide graph with 1e-6 before the SSA units copy it, so the
    # GCN branch of augmented SSA (only_attention False) in an -agcn model runs on the constant graph (spec §1.4).
    model = STTR(preset("s-tr-agcn", spatial_only_attention=False, agcn_graph=agcn_graph, num_heads=4))
    branches = [b.gcn.gcn for b in model.blocks if isinstance(b.gcn, SpatialAttention)]
    assert len(branches) == 6
    skeleton = spatial_adjacency("ntu25")
    expected = np.full_like(skeleton, 1e-6) if agcn_graph == "constant" else skeleton
    for branch in branches:
        assert np.array_equal(branch.adjacency.numpy(), expected)
    # a partition-GCN model keeps the skeleton graph in that branch
    plain = STTR(preset("s-tr", spatial_only_attention=False, num_heads=4))
    assert all(np.array_equal(b.gcn.gcn.adjacency.numpy(), skeleton)
               for b in plain.blocks if isinstance(b.gcn, SpatialAttention))


def test_constant_graph_changes_the_augmented_ssa_output():
    torch.manual_seed(0)
    a = STTR(preset("s-tr-agcn", spatial_only_attention=False, agcn_graph="constant", base_channels=16,
                    num_heads=4)).eval()
    b = STTR(a.config.replace(agcn_graph="skeleton")).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 8, 25, 2)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))


# ---------------------------------------------------------------- graph labeling modes (spec §1.11: other modes)
def test_single_matrix_graph_modes_on_the_ntu_head():
    from sttr.model.graph import adjacency

    head, neck, spine_shoulder = 3, 2, 20  # 0-based NTU: the head's only neighbour is the neck
    # degrees with self-loops: head 2 (itself, neck), neck 3 (itself, head, spine at shoulders)
    dad = adjacency("ntu25", "DAD")[0]
    assert dad.shape == (25, 25) and np.allclose(dad, dad.T)
    assert np.isclose(dad[head, neck], 1 / np.sqrt(2 * 3)) and np.isclose(dad[head, head], 1 / 2)
    dld = adjacency("ntu25", "DLD")[0]  # I - D^-1/2 N D^-1/2 without self-loops: degrees head 1, neck 2
    assert np.allclose(np.diag(dld), 1) and np.isclose(dld[head, neck], -1 / np.sqrt(2))
    star = adjacency("ntu25", "distance*")[0]  # I - colnorm(neighbours): every column sums to 0
    assert np.allclose(star.sum(axis=0), 0, atol=1e-6) and np.isclose(star[spine_shoulder, neck], -0.5)
    uniform = adjacency("ntu25", "uniform")[0]  # colnorm(I + neighbours): columns sum to 1
    assert np.allclose(uniform.sum(axis=0), 1) and np.isclose(uniform[neck, head], 0.5)
    assert adjacency("ntu25", "distance").shape == (2, 25, 25)
    assert np.array_equal(adjacency("openpose18", "fully_connected")[0], np.ones((18, 18)))


@pytest.mark.parametrize("mode, k", [("spatial", 3), ("distance", 2), ("uniform", 1), ("DAD", 1)])
def test_the_network_uses_the_configured_graph_mode(mode, k):
    from sttr.model.graph import adjacency
    from sttr.model.layers import GraphConv

    model = STTR(preset("t-tr", graph_mode=mode, base_channels=8, num_heads=2))
    gcns = [m for m in model.modules() if isinstance(m, GraphConv)]
    assert gcns and all(g.weight.shape[0] == k and g.mask.shape == (k, 25, 25) for g in gcns)
    assert np.array_equal(gcns[0].adjacency.numpy(), adjacency("ntu25", mode))


# ---------------------------------------------------------------- use_local_bn (spec §1.4)
def test_local_bn_normalises_per_channel_and_joint():
    from sttr.model.graph import spatial_adjacency
    from sttr.model.layers import GraphConv

    torch.manual_seed(0)
    a = spatial_adjacency("ntu25")
    gcn = GraphConv(3, 4, a, mask_learning=False, local_bn=True).eval()
    assert gcn.norm.num_features == 4 * 25
    with torch.no_grad():
        gcn.norm.running_mean.uniform_(-1, 1)
        gcn.norm.running_var.uniform_(0.5, 2)
        gcn.norm.weight.uniform_(0.5, 2)
        gcn.norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 5, 25)
    # the reference's unit_gcn: y = sum_k conv_k(x A_k); BatchNorm1d over the (N, C*V, T) view, channel c*V + v; ReLU
    y = sum(torch.einsum("nctv,vw->nctw", x, torch.as_tensor(a[k])).permute(0, 2, 3, 1) @ gcn.weight[k].T
            + gcn.bias[k] for k in range(3)).permute(0, 3, 1, 2)  # (N, C, T, V)
    n, c, t, v = y.shape
    flat = y.permute(0, 1, 3, 2).reshape(n, c * v, t)
    bn = gcn.norm
    flat = (flat - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None] \
        + bn.bias[:, None]
    expected = flat.reshape(n, c, v, t).permute(0, 1, 3, 2).relu()
    with torch.no_grad():
        assert torch.allclose(gcn(x), expected, atol=1e-5)


# ---------------------------------------------------------------- converter: what the keys tell, what is refused
def _reference_dict(cfg, touch_data_bn=True):
    from ._reference_keys import to_reference

    torch.manual_seed(0)
    model = STTR(cfg).eval()
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(10)
    return model, to_reference(model)


def test_an_untouched_model_data_bn_means_use_data_bn_was_off():
    from sttr.model.convert import load_reference_checkpoint

    model, sd = _reference_dict(preset("t-tr", input_norm=False, base_channels=8, num_heads=2))
    assert int(sd["data_bn.num_batches_tracked"]) == 0  # built by the reference, never run
    converted = load_reference_checkpoint(sd, num_heads=2)
    assert converted.config.input_norm is False
    _, trained = _reference_dict(preset("t-tr", base_channels=8, num_heads=2))
    assert load_reference_checkpoint(trained, num_heads=2).config.input_norm is True


def test_local_bn_and_graph_partitions_are_read_from_the_keys():
    from sttr.model.convert import load_reference_checkpoint

    _, sd = _reference_dict(preset("st-gcn", gcn_local_bn=True, graph_mode="distance", base_channels=8))
    cfg = load_reference_checkpoint(sd).config
    assert cfg.gcn_local_bn and cfg.graph_mode == "distance"
    _, sd = _reference_dict(preset("st-gcn", graph_mode="DLD", base_channels=8))
    with pytest.raises(ValueError, match="1 graph partition.*give graph_mode="):
        load_reference_checkpoint(sd)
    with pytest.raises(ValueError, match="graph_mode='distance' has 2 graph partition"):
        load_reference_checkpoint(sd, graph_mode="distance")
    assert load_reference_checkpoint(sd, graph_mode="DLD").config.graph_mode == "DLD"


def test_broken_reference_switches_are_refused_by_name():
    from sttr.model.convert import load_reference_checkpoint

    _, sd = _reference_dict(preset("s-tr", base_channels=8, num_heads=2))
    with_mask = {**sd, "backbone.3.gcn1.attention_conv.mask": torch.ones(25, 25)}
    with pytest.raises(ValueError, match="adjacency: True"):
        load_reference_checkpoint(with_mask, num_heads=2)
    _, sd = _reference_dict(preset("t-tr-agcn", base_channels=8, num_heads=2, agcn_graph="constant"))
    odd = {k: (v[0] if k.endswith(".PA") else v) for k, v in sd.items()}  # labeling_mode 'uniform': PA (V, V)
    with pytest.raises(ValueError, match="PA has shape \\(25, 25\\)"):
        load_reference_checkpoint(odd, num_heads=2)
    short = {k: v for k, v in sd.items() if not k.startswith("backbone.8.")}
    with pytest.raises(ValueError, match="custom backbone_config"):
        load_reference_checkpoint(short, num_heads=2)


def test_checkpoints_without_num_batches_tracked_load():
    from sttr.model.convert import load_reference_checkpoint

    model, sd = _reference_dict(preset("s-tr", base_channels=8, num_heads=2))
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    converted = load_reference_checkpoint(old, num_heads=2)
    x = torch.randn(1, 3, 8, 25, 2)
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))


def test_heads_are_read_from_a_relative_table():
    from sttr.model.convert import load_reference_checkpoint

    for extra in ({}, {"more_channels": True, "more_channels_divisor": 2}):
        model, sd = _reference_dict(preset("s-tr", relative=True, num_heads=4, base_channels=16, **extra))
        converted = load_reference_checkpoint(sd)  # no num_heads given: key_rel is (V^2 - V, key width per head)
        assert converted.config.num_heads == 4 and converted.config == model.config
        x = torch.randn(1, 3, 4, 25, 2)
        with torch.no_grad():
            assert torch.equal(converted(x), model(x))


def test_skip_conn_off_is_read_from_the_never_run_temporal_down():
    from sttr.model.convert import load_reference_checkpoint

    model, sd = _reference_dict(preset("t-tr", attention_skip=False, base_channels=8, num_heads=2))
    assert int(sd["backbone.3.tcn1.down.bn.num_batches_tracked"]) == 0  # built by the reference, never run
    assert load_reference_checkpoint(sd, num_heads=2).config.attention_skip is False
    _, sd = _reference_dict(preset("t-tr", base_channels=8, num_heads=2))
    assert load_reference_checkpoint(sd, num_heads=2).config.attention_skip is True


def test_a_checkpoint_saved_before_training_keeps_the_yaml_flags():
    # every batch-norm is untouched then, which says nothing about which ones the reference runs
    from sttr.model.convert import load_reference_checkpoint
    from ._reference_keys import to_reference

    sd = to_reference(STTR(preset("t-tr", base_channels=8, num_heads=2)))
    assert all(int(v) == 0 for k, v in sd.items() if k.endswith("num_batches_tracked"))
    cfg = load_reference_checkpoint(sd, num_heads=2).config
    assert cfg.input_norm and cfg.attention_skip and cfg.attention_input_norm
