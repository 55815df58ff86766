"""Spatial self-attention (SSA, spec §1.5): every frame is a sequence of V joint tokens.

Input and output (N*M, C, T, V) float32. Used in place of the GCN in the attention units of S-TR.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import GraphConv, JointChannelNorm, attend

__all__ = ["SpatialAttention", "head_dims"]


def head_dims(out_channels: int, num_heads: int, key_factor: float, value_dim: int, more_channels: bool,
              divisor: int, where: str) -> tuple[int, int, int, int, float]:
    """(q/k channels, v channels, per-head key dim, per-head value dim, logit scale) as in the reference.

    key_dim = int(Cout * key_factor); heads own contiguous channel blocks; `more_channels` gives each head
    key_dim / divisor channels. The scale is (key_dim // num_heads) ** -0.5 in both modes (the reference's).
    """
    key_dim = int(out_channels * key_factor)
    if more_channels:
        q_ch, v_ch = key_dim * num_heads // divisor, value_dim * num_heads // divisor
    else:
        q_ch, v_ch = key_dim, value_dim
    if key_dim < num_heads or q_ch % num_heads or v_ch % num_heads or q_ch == 0 or v_ch == 0:
        raise ValueError(f"{where}: {num_heads} heads need key channels ({q_ch}) and value channels ({v_ch}) "
                         f"divisible by the number of heads (width {out_channels}, key_factor {key_factor})")
    return q_ch, v_ch, q_ch // num_heads, v_ch // num_heads, float((key_dim // num_heads) ** -0.5)


class SpatialAttention(nn.Module):
    """SSA block: [data BN] -> per-frame multi-head attention over joints -> proj [+ GCN branch | + skip] -> BN -> ReLU.

    Args:
        in_channels, out_channels: Cin, Cout.
        adjacency: (K, V, V) graph (used only by the GCN branch when `only_attention` is False).
        num_heads: H.
        key_factor, value_factor: key width = int(Cout*key_factor); value width = Cout when `only_attention`,
            else int(Cout*value_factor) and a GCN supplies the other channels.
        only_attention, input_norm, skip, drop_connect, relative, more_channels, divisor: spec §1.5 / §1.9.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, num_heads: int = 8,
                 key_factor: float = 0.25, value_factor: float = 0.25, only_attention: bool = True,
                 input_norm: bool = True, skip: bool = True, drop_connect: bool = True, relative: bool = False,
                 more_channels: bool = False, divisor: int = 4) -> None:
        super().__init__()
        num_joints = adjacency.shape[-1]
        value_dim = out_channels if only_attention else int(out_channels * value_factor)
        self.q_ch, self.v_ch, self.head_key, self.head_value, self.scale = head_dims(
            out_channels, num_heads, key_factor, value_dim, more_channels, divisor, "spatial attention")
        self.num_heads, self.drop_connect = num_heads, drop_connect
        self.norm = JointChannelNorm(in_channels, num_joints) if input_norm else None
        self.qkv = nn.Conv2d(in_channels, 2 * self.q_ch + self.v_ch, 1)
        self.proj = nn.Conv2d(self.v_ch, value_dim, 1)
        self.gcn = None
        if not only_attention:
            self.gcn = GraphConv(in_channels, out_channels - value_dim, adjacency, mask_learning=False, activate=False)
        self.skip = skip and only_attention and in_channels == out_channels
        self.out_norm = nn.BatchNorm2d(out_channels)
        self.key_rel = self.key_rel_diagonal = None
        if relative:
            self.key_rel = nn.Parameter(torch.randn(num_joints * num_joints - num_joints, self.head_key))
            self.key_rel_diagonal = nn.Parameter(torch.randn(1, self.head_key))
            i, j = np.meshgrid(np.arange(num_joints), np.arange(num_joints), indexing="ij")
            index = np.where(i == j, num_joints * (num_joints - 1), i * (num_joints - 1) + np.where(j < i, j, j - 1))
            self.register_buffer("rel_index", torch.as_tensor(index, dtype=torch.long), persistent=False)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None
        self.qkv_parts: nn.ModuleList | None = None  # see use_separate_projections
        self.head_minor = False  # channel order of q, v and proj's input; see use_head_minor_channels

    @torch.no_grad()
    def use_head_minor_channels(self) -> None:
        """Reorder the q and v channels of `qkv` and the input channels of `proj` from head-major (h*D + d, the
        reference's order) to head-minor (d*H + h); the outputs do not change.

        For export. ONNX Runtime's Transpose is fast when it moves one axis and several times slower otherwise
        (on S-TR's attention, ~20-60 us against ~250-350 us per transpose). Head-minor q and v, and head-major k
        (which attention reads transposed), make every head split and merge a one-axis move. Not for training:
        state_dict keys stay the same but their channel order does not.
        """
        if self.head_minor:
            return
        if self.qkv_parts is not None:
            raise RuntimeError("reorder the channels before use_separate_projections, which copies qkv's rows")
        h = self.num_heads

        def order(width: int, offset: int = 0) -> list[int]:
            d = width // h
            return [offset + head * d + i for i in range(d) for head in range(h)]

        rows = order(self.q_ch) + list(range(self.q_ch, 2 * self.q_ch)) + order(self.v_ch, 2 * self.q_ch)
        self.qkv.weight.copy_(self.qkv.weight[rows])
        self.qkv.bias.copy_(self.qkv.bias[rows])
        self.proj.weight.copy_(self.proj.weight[:, order(self.v_ch)])
        self.head_minor = True

    def use_separate_projections(self) -> None:
        """Split `qkv` into three 1x1 convs (q, k, v) with the same rows, for export: the compiled graph then has no
        Split of the fused output (in ONNX Runtime's INT8 graph each projection is its own integer conv and
        dequantize). Same outputs."""
        if self.qkv_parts is not None:
            return
        parts, start = [], 0
        for width in (self.q_ch, self.q_ch, self.v_ch):
            conv = nn.Conv2d(self.qkv.in_channels, width, 1).to(self.qkv.weight.device, self.qkv.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(self.qkv.weight[start:start + width])
                conv.bias.copy_(self.qkv.bias[start:start + width])
            parts.append(conv)
            start += width
        self.qkv_parts = nn.ModuleList(parts)

    def _heads(self, x: torch.Tensor, dim: int, minor: bool) -> torch.Tensor:
        """(NM, T, V, H*D) tokens -> (NM, T, H, V, D) per-head tokens; `minor`: channels ordered d*H + h."""
        if minor:
            return x.unflatten(-1, (dim, self.num_heads)).permute(0, 1, 4, 2, 3)
        return x.unflatten(-1, (self.num_heads, dim)).transpose(2, 3)

    def _merge_heads(self, out: torch.Tensor, nm: int, t: int, v: int) -> torch.Tensor:
        """(NM, T, H, V, Dv) -> (NM, T, V, H*Dv) in this module's value channel order. The sizes are the block
        input's: read there, the legacy ONNX exporter keeps the batch dynamic (from `out` or with `flatten` it bakes
        the example's batch into the graph)."""
        out = out.permute(0, 1, 3, 4, 2) if self.head_minor else out.transpose(2, 3)
        return out.reshape(nm, t, v, self.v_ch)

    def _relative_bias(self, q: torch.Tensor) -> torch.Tensor:
        """q (..., V, D) -> (..., V, V): q_i . E[i, j], E an embedding per ordered joint pair (spec §1.7)."""
        table = torch.cat([self.key_rel, self.key_rel_diagonal], dim=0)[self.rel_index]  # (V, V, D)
        return torch.einsum("...id,ijd->...ij", q * self.scale, table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nm, _, t, v = x.shape
        x_in = x
        if self.norm is not None:
            x = self.norm(x)
        if self.qkv_parts is not None:
            q, k, val = (conv(x).permute(0, 2, 3, 1) for conv in self.qkv_parts)
        else:
            qkv = self.qkv(x).permute(0, 2, 3, 1)  # (NM, T, V, 2Dq+Dv): tokens with channels last (a view)
            q, k, val = qkv.split([self.q_ch, self.q_ch, self.v_ch], dim=-1)  # each (D * heads) wide
        q = self._heads(q, self.head_key, self.head_minor)  # (NM, T, H, V, Dk)
        k = self._heads(k, self.head_key, False)  # (NM, T, H, V, Dk), read transposed by attend
        val = self._heads(val, self.head_value, self.head_minor)  # (NM, T, H, V, Dv)
        bias = self._relative_bias(q) if self.key_rel is not None else None  # (NM, T, H, V, V)
        out, weights = attend(q, k, val, self.scale, bias, self.drop_connect and self.training, self.keep_weights)
        self.last_weights = weights.detach() if weights is not None else None  # (NM, T, H, V, V)
        out = self._merge_heads(out, nm, t, v)  # (NM, T, V, H*Dv)
        out = self.proj(out.permute(0, 3, 1, 2))  # (NM, value_dim, T, V) channels-last
        if self.gcn is not None:
            out = torch.cat([self.gcn(x), out], dim=1)  # the GCN sees the data-normalised input
        elif self.skip:
            out = out + x_in
        return F.relu_(self.out_norm(out))  # batch norm's fresh output, which its backward does not read
