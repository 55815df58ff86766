"""Plain building blocks of ST-TR: temporal conv, partition GCN, adaptive GCN, data batch-norms, attention core.

Shapes inside the network are (N*M, C, T, V) float32 (spec §1), held channels-last in memory (see `STTR`);
each block documents its own. The three partitions of a GCN are fused into one 1x1 conv + one batched matmul
(same math as the reference's three convs, spec §1.4); the attention core uses `F.scaled_dot_product_attention`
on CUDA when no attention weights are needed and no drop-connect applies (exactly softmax(q kᵀ s + bias) v;
on CPU the plain matmul/softmax path measured faster for these short sequences and small heads).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FastDropout", "TemporalConv", "GraphConv", "AdaptiveGraphConv", "JointChannelNorm", "attend",
           "init_conv_fan_out"]


def init_conv_fan_out(weight: torch.Tensor) -> None:
    """He init as the reference's `conv_init`: N(0, sqrt(2 / (Cout * kh * kw))); weight (Cout, ...)."""
    fan = weight.shape[0] * int(np.prod(weight.shape[2:])) if weight.dim() > 2 else weight.shape[0]
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / fan))


class FastDropout(nn.Module):
    """Inverted dropout with a mask drawn by `torch.rand_like` (same distribution as `nn.Dropout`).

    On CPU, `nn.Dropout`'s Bernoulli draw is about 3x slower than a uniform draw and a compare; dropout before every
    TCN conv made it a visible share of a training step. Identity in eval mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        scale = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1/(1-p), kept with prob 1-p
        return x * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class TemporalConv(nn.Module):
    """Dropout -> Conv (k x 1, stride s on T) -> BatchNorm -> ReLU (the reference `Unit2D`, spec §1.4).

    Dropout is out-of-place (the reference's in-place dropout breaks autograd, spec §9.2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = FastDropout(dropout) if dropout > 0 else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), (stride, 1), ((kernel_size - 1) // 2, 0))
        self.norm = nn.BatchNorm2d(out_channels)
        init_conv_fan_out(self.conv.weight)
        # the input arrives channels-last (see `STTR`); a weight in the same order saves oneDNN a reorder per call
        self.conv.weight.data = self.conv.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        stride = self.conv.stride[0]
        if self.training and stride > 1 and self.conv.kernel_size[0] == 1 and self.conv.in_channels < 16:
            # The same numbers as the strided 1x1 conv: keep every s-th frame, then a 1x1 conv. Why: oneDNN in
            # torch 2.13 (CPU) corrupts the heap (SIGSEGV, "corrupted size vs. prev_size") computing the weight
            # gradient of a strided 1x1 conv on channels-last input with fewer than 16 input channels (kernel 1,
            # 2, 9 x 3-32 input x 8-64 output channels x T 64, 300 tried: only this case), e.g. the residual of a
            # small model's stride-2 unit. Only there: through the slice's full-size gradient S-TR's training step
            # ran 3.5 % slower in an interleaved A/B. Training only: eval and export keep the one strided conv.
            y = F.conv2d(x[:, :, ::stride], self.conv.weight, self.conv.bias)
        else:
            y = self.conv(x)
        y = self.norm(y)  # (NM, Cout, ceil(T/s), V)
        return F.relu_(y)  # y is batch norm's fresh output, which its backward does not read


class GraphConv(nn.Module):
    """Spatial-partition graph convolution (`unit_gcn`, spec §1.4): sum_k W_k (x Â_k) + b_k -> BN -> ReLU.

    `weight` (K, Cout, Cin) and `bias` (K, Cout) hold the K per-partition 1x1 convs; `mask` (K, V, V)
    (when `mask_learning`) multiplies the fixed adjacency. With `activate=False` BN and ReLU are skipped
    (the GCN branch of augmented SSA). `local_bn`: the BN is per (channel, joint), a BatchNorm1d(Cout * V) over the
    (Cout * V, T) view, channel c * V + v (the reference's `use_local_bn`).
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, mask_learning: bool = True,
                 activate: bool = True, local_bn: bool = False) -> None:
        super().__init__()
        k, v, _ = adjacency.shape
        self.register_buffer("adjacency", torch.as_tensor(adjacency, dtype=torch.float32), persistent=False)
        self.mask = nn.Parameter(torch.ones(k, v, v)) if mask_learning else None
        self.weight = nn.Parameter(torch.empty(k, out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(k, out_channels))
        bound = 1.0 / math.sqrt(in_channels)
        for i in range(k):
            init_conv_fan_out(self.weight[i])
        nn.init.uniform_(self.bias, -bound, bound)
        self.norm: nn.Module | None = None
        if activate:
            self.norm = JointChannelNorm(out_channels, v) if local_bn else nn.BatchNorm2d(out_channels)
        self.aggregate_first = False  # see use_aggregate_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last form of sum_k (W_k x) A_k: one 1x1 conv to all K partitions at once, read as (NM, T, V, C)
        # token rows, then one batched matmul contracting (joint, partition) with the stacked adjacency. No layout
        # copies when x is channels-last (see `STTR`); the bias is added after aggregation, as in the reference.
        # eval: BN folded into the weights (one op less, and in ONNX nothing between the aggregation and the ReLU
        # that keeps ONNX Runtime from running it channels-last)
        fold = isinstance(self.norm, nn.BatchNorm2d) and not self.training and self.norm.track_running_stats
        if self.aggregate_first and not self.training and (fold or self.norm is None):
            return self._aggregate_first(x)
        a = self.adjacency if self.mask is None else self.adjacency * self.mask  # (K, V, W)
        k, cout, cin = self.weight.shape
        n, _, t, v = x.shape
        weight, bias = self._folded() if fold else (self.weight, self.bias.sum(0))
        z = F.conv2d(x, weight.reshape(k * cout, cin, 1, 1)).permute(0, 2, 3, 1)  # (NM, T, V, K*Cout)
        # bmm over the batch-expanded adjacency: matmul would fold the batch into rows and copy z transposed (and
        # its gradient back), twice the time of this for forward + backward
        adj = a.permute(2, 1, 0).reshape(v, v * k).expand(n * t, v, v * k)
        y = torch.bmm(adj, z.reshape(n * t, v * k, cout))  # (NM*T, W, Cout)
        y = (y + bias).view(n, t, v, cout).permute(0, 3, 1, 2)  # (NM, Cout, T, W) channels-last
        if self.norm is None:
            return y
        return F.relu_(y if fold else self.norm(y))  # a fresh tensor either way

    def use_aggregate_first(self) -> None:
        """Eval-time order for export: sum over joints first, then one 1x1 conv over the K partitions' channels.

        sum_k W_k (x A_k) equals sum_k (W_k x) A_k. Aggregating first multiplies the joints of the Cin input
        channels (giving K*Cin) instead of K*Cout conv outputs, then one conv over the K partitions' channels (BN
        and the biases folded in) whose integer kernel also takes the ReLU: in ONNX Runtime's INT8 graph a
        dequantize, a bias add and a ReLU per unit go, and the stem's aggregation shrinks from 3*64 to 3 channels
        (S-TR, two persons: ~0.9 -> ~0.2 ms for the stem; 64 -> 64 units about even). Same outputs.
        """
        self.aggregate_first = True

    def _aggregate_first(self, x: torch.Tensor) -> torch.Tensor:
        a = self.adjacency if self.mask is None else self.adjacency * self.mask  # (K, V, W)
        k, cout, cin = self.weight.shape
        n, _, t, v = x.shape
        weight, bias = self._folded() if self.norm is not None else (self.weight, self.bias.sum(0))
        # row (w, k) of adj sums joint v with weight A_k[v, w]: the product comes out as (.., W, K*Cin), k-major
        adj = a.permute(2, 0, 1).reshape(a.shape[2] * a.shape[0], a.shape[1])  # (W*K, V)
        z = torch.matmul(adj, x.permute(0, 2, 3, 1).reshape(n * t, v, cin))  # (NM*T, W*K, Cin)
        z = z.reshape(n, t, v, k * cin).permute(0, 3, 1, 2)  # (NM, K*Cin, T, W)
        y = F.conv2d(z, weight.permute(1, 0, 2).reshape(cout, k * cin, 1, 1), bias)
        return y if self.norm is None else F.relu(y)

    def _folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval mode: (weight, bias) with BN folded in. BN is one affine map per output channel after the sum over
        partitions, so it scales each W_k's rows and the summed bias."""
        norm = self.norm
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        return self.weight * scale[:, None], self.bias.sum(0) * scale + norm.bias - norm.running_mean * scale


class AdaptiveGraphConv(nn.Module):
    """2s-AGCN adaptive graph convolution (`unit_agcn`, spec §1.4).

    For each subset i: S_i = softmax over dim -2 of (a_i b_i / (inter*T)), G_i = S_i + A_fixed_i + PA_i,
    z_i = conv_d_i(x G_i); y = ReLU(BN(sum_i z_i) + down(x)). `graph` is the fixed part: the skeleton
    adjacency (intended) or the constant 1e-6 (what the reference actually ran, spec §9.1).
    """

    def __init__(self, in_channels: int, out_channels: int, graph: np.ndarray, coff_embedding: int = 4) -> None:
        super().__init__()
        k, v, _ = graph.shape
        inter = out_channels // coff_embedding
        self.inter = inter
        self.register_buffer("graph", torch.as_tensor(graph, dtype=torch.float32), persistent=False)
        self.PA = nn.Parameter(torch.full((k, v, v), 1e-6))
        self.embed_a = nn.Conv2d(in_channels, k * inter, 1)  # the K conv_a stacked
        self.embed_b = nn.Conv2d(in_channels, k * inter, 1)  # the K conv_b stacked
        self.weight = nn.Parameter(torch.empty(k, out_channels, in_channels))  # the K conv_d
        self.bias = nn.Parameter(torch.zeros(k, out_channels))
        for conv in (self.embed_a, self.embed_b):
            for i in range(k):
                nn.init.kaiming_normal_(conv.weight[i * inter:(i + 1) * inter], mode="fan_out")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (out_channels * in_channels * k)))
        self.norm = nn.BatchNorm2d(out_channels)
        nn.init.constant_(self.norm.weight, 1e-6)
        self.down = None
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            nn.init.kaiming_normal_(self.down[0].weight, mode="fan_out")
            nn.init.zeros_(self.down[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k, cout, cin = self.weight.shape  # sizes from the module: a traced graph's kernel then has a known shape
        a = self.embed_a(x).view(n, k, self.inter, t, v)
        b = self.embed_b(x).view(n, k, self.inter, t, v)
        s = torch.einsum("nkctv,nkctw->nkvw", a, b) / (self.inter * t)  # (N, K, V, V)
        g = torch.softmax(s, dim=-2) + (self.graph + self.PA)  # columns of S sum to 1
        xg = torch.einsum("nctv,nkvw->nkctw", x, g).reshape(n, k * c, t, v)  # (N, K*C, T, V)
        y = F.conv2d(xg, self.weight.permute(1, 0, 2).reshape(cout, k * cin, 1, 1), self.bias.sum(0))
        y = self.norm(y) + (x if self.down is None else self.down(x))
        return F.relu(y)


class JointChannelNorm(nn.BatchNorm1d):
    """BatchNorm1d over the (C*V, T) view of an (NM, C, T, V) tensor, channel index c*V + v (spec §1.5 step 1).

    In eval mode it is a per-(c, v) affine map applied in place of layout (no permute copies). In training the
    channels-last input (memory order t, v, c) is normalised as a channels-last (NM, V*C, T, 1) batch with the
    statistics permuted to that v*C + c order: no copy, and the channels-last output keeps the attention's 1x1 convs
    and their gradients channels-last too (the (C*V, T) view cost a copy each way and sent those convs to NCHW).
    """

    def __init__(self, channels: int, num_joints: int) -> None:
        super().__init__(channels * num_joints)
        self.channels, self.num_joints = channels, num_joints

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, t, v = x.shape
        if self.training or not self.track_running_stats:
            if not x.is_contiguous(memory_format=torch.channels_last):
                y = super().forward(x.transpose(2, 3).reshape(n, c * v, t))
                return y.view(n, c, v, t).transpose(2, 3)
            return self._channels_last_batch_norm(x)
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        # sizes from the module, not from x: a traced ONNX graph then holds constant (1, C, 1, V) factors that
        # ONNX Runtime can move into its channels-last layout (a shape computed from x blocks that)
        shape = (1, self.channels, 1, self.num_joints)
        return x * scale.view(shape) + shift.view(shape)

    def _channels_last_batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        """Training-mode BatchNorm1d of the (C*V, T) view, computed on the channels-last tensor as it lies."""
        n, c, t, v = x.shape
        order = torch.arange(c * v, device=x.device).view(c, v).t().reshape(-1)  # memory position v*C + c -> c*V + v
        tokens = x.permute(0, 2, 3, 1).reshape(n, t, v * c)  # a view: channels-last memory is (n, t, v, c)
        batch = tokens.transpose(1, 2).unsqueeze(-1)  # (n, V*C, t, 1), channels-last: BN's NHWC kernel, no copy
        tracking = self.training and self.track_running_stats
        momentum = self.momentum if self.momentum is not None else 0.0
        if tracking:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm
                momentum = 1.0 / float(self.num_batches_tracked)
        mean = self.running_mean[order] if tracking else None
        var = self.running_var[order] if tracking else None
        y = F.batch_norm(batch, mean, var, self.weight[order] if self.weight is not None else None,
                         self.bias[order] if self.bias is not None else None, True, momentum, self.eps)
        if tracking:  # F.batch_norm updated the permuted copies
            with torch.no_grad():
                self.running_mean[order] = mean
                self.running_var[order] = var
        return y.squeeze(-1).transpose(1, 2).reshape(n, t, v, c).permute(0, 3, 1, 2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, bias: torch.Tensor | None = None,
           drop_connect: bool = False, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax(q kᵀ · scale + bias) v over the last-but-one axis of k/v; (..., L, D) tensors.

    `drop_connect` (training only) zeroes whole key columns with p = 0.5 per (sequence, head, key) and
    renormalises the rows, as the reference does (spec §1.5 step 6). Renormalising softmax weights over the kept keys
    is the softmax over the kept keys' logits, so it is computed as one masked softmax (the reference's
    w / (sum + 1e-8) differs only by that 1e-8 relative term); a row whose keys are all dropped comes out zero, as
    there.
    Returns (out (..., L, Dv), weights (..., L, S) when `need_weights`, else None).
    """
    if not drop_connect and not need_weights and q.is_cuda:  # fused kernels pay off on GPU; on CPU the
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale), None  # plain path is faster
    logits = (q * scale) @ k.transpose(-1, -2)  # (..., L, S)
    if bias is not None:
        logits = logits + bias
    if not drop_connect:
        weights = torch.softmax(logits, dim=-1)
        # only when asked: a caller keeps what it gets (S-TR eval at batch 64, T = 300 held 2.2 GB of them)
        return weights @ v, (weights if need_weights else None)
    dropped = torch.rand(logits[..., :1, :].shape, device=logits.device) < 0.5  # (..., 1, S): one draw per key
    weights = torch.softmax(logits.masked_fill(dropped, torch.finfo(logits.dtype).min), dim=-1)
    any_kept = (~dropped).any(-1, keepdim=True)  # (..., 1, 1); all dropped: the row is zero, not uniform
    return (weights @ v) * any_kept, (weights * any_kept if need_weights else None)
