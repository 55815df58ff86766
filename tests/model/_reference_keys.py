"""Test helper: write an STTR's weights under the reference ST-TR key names (spec Appendix A).

Written from the spec's key tables, independently of `sttr.model.convert`, so that converting the result
back checks the converter's variant inference and key mapping on every variant.
"""
from __future__ import annotations

import torch
from torch import nn

from sttr.model.layers import AdaptiveGraphConv, GraphConv, TemporalConv
from sttr.model.spatial_attention import SpatialAttention
from sttr.model.temporal_attention import TemporalAttention

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(out: dict, prefix: str, bn: nn.Module | None, size: int | None = None) -> None:
    if bn is None:  # a BN the reference builds but never uses: default statistics
        bn = nn.BatchNorm1d(size)
    for k in BN_KEYS:
        out[f"{prefix}.{k}"] = getattr(bn, k).detach().clone()


def _conv(out: dict, prefix: str, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    out[f"{prefix}.weight"] = weight.detach().clone()
    if bias is not None:
        out[f"{prefix}.bias"] = bias.detach().clone()


def _unit2d(out: dict, prefix: str, m: TemporalConv) -> None:
    _conv(out, f"{prefix}.conv", m.conv.weight, m.conv.bias)
    _bn(out, f"{prefix}.bn", m.norm)


def _gcn(out: dict, prefix: str, m: nn.Module, num_joints: int = 25) -> None:
    if isinstance(m, GraphConv):
        if m.mask is not None:
            out[f"{prefix}.mask"] = m.mask.detach().clone()
        for k in range(m.weight.shape[0]):
            _conv(out, f"{prefix}.conv_list.{k}", m.weight[k][..., None, None], m.bias[k])
        _bn(out, f"{prefix}.bn", m.norm)
    elif isinstance(m, AdaptiveGraphConv):
        out[f"{prefix}.PA"] = m.PA.detach().clone()
        i = m.inter
        for k in range(m.weight.shape[0]):
            _conv(out, f"{prefix}.conv_a.{k}", m.embed_a.weight[k * i:(k + 1) * i], m.embed_a.bias[k * i:(k + 1) * i])
            _conv(out, f"{prefix}.conv_b.{k}", m.embed_b.weight[k * i:(k + 1) * i], m.embed_b.bias[k * i:(k + 1) * i])
            _conv(out, f"{prefix}.conv_d.{k}", m.weight[k][..., None, None], m.bias[k])
        _bn(out, f"{prefix}.bn", m.norm)
        if m.down is not None:
            _conv(out, f"{prefix}.down.0", m.down[0].weight, m.down[0].bias)
            _bn(out, f"{prefix}.down.1", m.down[1])
    elif isinstance(m, SpatialAttention):
        cin = m.qkv.weight.shape[1]
        _bn(out, f"{prefix}.data_bn", m.norm, cin * num_joints)  # the reference always builds it (Cin * V)
        _bn(out, f"{prefix}.bn", m.out_norm)
        _conv(out, f"{prefix}.attention_conv.qkv_conv", m.qkv.weight, m.qkv.bias)
        _conv(out, f"{prefix}.attention_conv.attn_out", m.proj.weight, m.proj.bias)
        if m.key_rel is not None:
            out[f"{prefix}.attention_conv.key_rel"] = m.key_rel.detach().clone()
            out[f"{prefix}.attention_conv.key_rel_diagonal"] = m.key_rel_diagonal.detach().clone()
        if m.gcn is not None:
            for k in range(m.gcn.weight.shape[0]):
                _conv(out, f"{prefix}.g_convolutions.{k}", m.gcn.weight[k][..., None, None], m.gcn.bias[k])


def _tcn(out: dict, prefix: str, m: nn.Module, cin: int) -> None:
    if isinstance(m, TemporalConv):
        _unit2d(out, prefix, m)
        return
    assert isinstance(m, TemporalAttention)
    if m.norm is not None:
        _bn(out, f"{prefix}.data_bn", m.norm)
    _bn(out, f"{prefix}.bn", m.out_norm)
    _conv(out, f"{prefix}.qkv_conv", m.qkv.weight.permute(0, 1, 3, 2), m.qkv.bias)
    _conv(out, f"{prefix}.attn_out", m.proj.weight, m.proj.bias)
    if m.down is not None:
        _unit2d(out, f"{prefix}.down", m.down)
    elif m.stride != 1:  # the reference builds it even when skip_conn is off
        _unit2d(out, f"{prefix}.down", TemporalConv(cin, m.out_norm.num_features, 1, m.stride))
    if m.tcn is not None:
        _unit2d(out, f"{prefix}.tcn_conv", m.tcn)
    if m.key_rel is not None:
        out[f"{prefix}.key_rel"] = m.key_rel.detach().clone()


def to_reference(model) -> dict[str, torch.Tensor]:
    """The reference-named state dict of `model` (with the unused person_bn)."""
    out: dict[str, torch.Tensor] = {}
    cfg = model.config
    _bn(out, "data_bn", model.input_norm, cfg.in_channels * cfg.num_joints * cfg.num_persons)
    if model.stem_gcn is not None:
        _gcn(out, "gcn0", model.stem_gcn, cfg.num_joints)
        _unit2d(out, "tcn0", model.stem_tcn)
    for i, block in enumerate(model.blocks):
        _gcn(out, f"backbone.{i}.gcn1", block.gcn, cfg.num_joints)
        _tcn(out, f"backbone.{i}.tcn1", block.tcn, block.tcn.out_norm.num_features
             if isinstance(block.tcn, TemporalAttention) else 0)
        if block.residual is not None:
            _unit2d(out, f"backbone.{i}.down1", block.residual)
    _bn(out, "person_bn", None, model.out_channels)
    out["fcn.weight"] = model.head.weight.detach()[..., None].clone()
    out["fcn.bias"] = model.head.bias.detach().clone()
    return out
