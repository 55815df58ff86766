"""Temporal self-attention (TSA, spec §1.6): every joint trajectory is a sequence of frame tokens.

Input (N*M, C, T, V) float32, output (N*M, Cout, T', V) with T' = the strided length. Used in place
of the TCN in the attention units of T-TR; the windowed variant attends inside blocks of frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import JointChannelNorm, TemporalConv, attend
from .spatial_attention import head_dims

__all__ = ["TemporalAttention", "qkv_taps"]


def qkv_taps(stride: int, num_joints: int, more_channels: bool = False, windowed: bool = False) -> int:
    """Temporal taps of the strided qkv conv: `stride` for odd V (or more_channels / windowed), else 1 (spec §1.6)."""
    return stride if (num_joints % 2 == 1 or more_channels or windowed) else 1


class TemporalAttention(nn.Module):
    """TSA block: [data BN] -> strided qkv -> attention over frames per joint -> proj [TCN] [+ residual] -> BN -> ReLU.

    Args:
        in_channels, out_channels: C, Cout (equal in every reference configuration).
        stride: 1 or 2 (the qkv conv and the residual stride the time axis).
        num_joints: V (decides the qkv kernel parity rule).
        relative_length: With relative positions, the attended length the table is built for (None: off).
        window: Windowed TSA block length (None: attend over the whole sequence).
        kernel_size, dropout: Of the TCN branch when `only_attention` is False.
        Others: as `SpatialAttention`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_joints: int, num_heads: int = 8,
                 key_factor: float = 0.25, value_factor: float = 0.25, only_attention: bool = True,
                 input_norm: bool = True, skip: bool = True, drop_connect: bool = True,
                 relative_length: int | None = None, window: int | None = None, more_channels: bool = False,
                 divisor: int = 4, kernel_size: int = 9, dropout: float = 0.0) -> None:
        super().__init__()
        if window is not None and stride != 1:
            raise ValueError(f"windowed temporal attention supports stride 1 only, got stride {stride}")
        value_dim = out_channels if only_attention else int(out_channels * value_factor)
        self.q_ch, self.v_ch, self.head_key, self.head_value, self.scale = head_dims(
            out_channels, num_heads, key_factor, value_dim, more_channels, divisor, "temporal attention")
        self.num_heads, self.drop_connect, self.window, self.stride = num_heads, drop_connect, window, stride
        self.taps = qkv_taps(stride, num_joints, more_channels, window is not None)
        self.norm = JointChannelNorm(in_channels, num_joints) if input_norm else None
        # the reference's (1, taps) kernel over (NM*V, C, 1, T) is a (taps, 1) kernel over (NM, C, T, V)
        self.qkv = nn.Conv2d(in_channels, 2 * self.q_ch + self.v_ch, (self.taps, 1), (stride, 1))
        self.proj = nn.Conv2d(self.v_ch, value_dim, 1)
        self.tcn = None
        if not only_attention:
            self.tcn = TemporalConv(in_channels, out_channels - value_dim, kernel_size, stride, dropout)
        self.skip = skip
        self.down = None
        if skip and (in_channels != out_channels or stride != 1):
            self.down = TemporalConv(in_channels, out_channels, 1, stride)
        self.out_norm = nn.BatchNorm2d(out_channels)
        self.key_rel = None
        self.relative_length = window if (window is not None and relative_length is not None) else relative_length
        if self.relative_length is not None:
            length = self.relative_length
            self.key_rel = nn.Parameter(torch.randn(2 * length - 1, self.head_key))
            pos = torch.arange(length)
            self.register_buffer("rel_index", pos[None, :] - pos[:, None] + length - 1, persistent=False)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def attended_length(self, t: int) -> int:
        """Frames the attention sees for an input of t frames."""
        return (t - self.taps) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nm, _, t, v = x.shape
        x_in = x
        if self.norm is not None:
            x = self.norm(x)
        h = self.num_heads
        qkv = self.qkv(x).permute(0, 2, 3, 1)  # (NM, T', V, 2Dq+Dv): channels last (a view)
        tq = qkv.shape[1]
        q, k, val = qkv.split([self.q_ch, self.q_ch, self.v_ch], dim=-1)  # head h owns channels [h*D, (h+1)*D)
        shape = (nm, v, h, tq // self.window, self.window) if self.window else (nm, v, h, tq)
        q = q.unflatten(-1, (h, self.head_key)).permute(0, 2, 3, 1, 4).reshape(*shape, self.head_key)
        k = k.unflatten(-1, (h, self.head_key)).permute(0, 2, 3, 1, 4).reshape(*shape, self.head_key)
        val = val.unflatten(-1, (h, self.head_value)).permute(0, 2, 3, 1, 4).reshape(*shape, self.head_value)
        bias = None  # q, k, val: (NM, V, H, [blocks, ] L, D)
        if self.key_rel is not None:
            table = self.key_rel[self.rel_index]  # (L, L, D): key_rel[u - t + L - 1]
            bias = torch.einsum("...td,tud->...tu", q * self.scale, table)
        out, weights = attend(q, k, val, self.scale, bias, self.drop_connect and self.training, self.keep_weights)
        self.last_weights = weights.detach() if weights is not None else None
        out = out.reshape(nm, v, h, tq, self.head_value).permute(0, 3, 1, 2, 4).reshape(nm, tq, v, self.v_ch)
        out = self.proj(out.permute(0, 3, 1, 2))  # (NM, value_dim, T', V) channels-last
        if self.tcn is not None:
            out = torch.cat([self.tcn(x_in), out], dim=1)
        if self.skip:
            out = out + (x_in if self.down is None else self.down(x_in))
        return F.relu_(self.out_norm(out))  # batch norm's fresh output, which its backward does not read
