"""The ST-TR network family (spec §1): `STTR(config)` maps a window (N, C, T, V, M) to logits (N, num_classes).

Persons are folded into the batch at the top of `forward` ((N, C, T, V, M) -> (N*M, C, T, V), row n*M + m),
every block works on (N*M, C, T, V), and the head averages over joints, frames and persons. The (N*M, C, T, V)
tensors are channels-last in memory (N*M, T, V, C): the 1x1 projections and the 9x1 temporal convolutions then
run oneDNN's channels-last kernels, and the token views the attention needs are free.

In eval mode without autograd (`torch.no_grad()` / `torch.inference_mode()`), an all-zero person slot (the
usual absent second person) is not computed: its pooled feature
does not depend on the input, so it is computed once per (T, dtype, device) and cached; the cache is dropped
when any parameter or buffer changes, on `train()`/`eval()` and on `.to()`. The skip is off while training,
tracing, exporting to ONNX or compiling, so exported graphs are the plain network.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from .config import RAW_CONCAT_UNIT, STTRConfig
from .graph import adjacency as graph_adjacency
from .layers import AdaptiveGraphConv, GraphConv, TemporalConv, init_conv_fan_out
from .skeleton import get_layout
from .spatial_attention import SpatialAttention
from .temporal_attention import TemporalAttention, qkv_taps

__all__ = ["STTR", "STTRBlock"]
log = logging.getLogger(__name__)


def _tracing() -> bool:
    """True while tracing, exporting, compiling or capturing a CUDA graph: skip data-dependent checks and shortcuts
    (host syncs are illegal during a capture, and a graph would replay the branch taken at capture for every input)."""
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)() or \
        getattr(torch.compiler, "is_exporting", lambda: False)()
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export() or compiling
                or _capturing())


def _capturing() -> bool:
    """True while the current CUDA stream is capturing a graph (torch.cuda.graph); False on CPU-only builds."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


class STTRBlock(nn.Module):
    """One spatio-temporal unit (`TCN_GCN_unit`, spec §1.3): tcn(gcn(x)) + residual(x), no activation after."""

    def __init__(self, gcn: nn.Module, tcn: nn.Module, residual: nn.Module | None) -> None:
        super().__init__()
        self.gcn, self.tcn, self.residual = gcn, tcn, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tcn(self.gcn(x)) + (x if self.residual is None else self.residual(x))


class STTR(nn.Module):
    """Spatial-temporal transformer network for skeleton action recognition (one stream).

    Args:
        config: The architecture; see `STTRConfig` and `PRESETS`.
    """

    def __init__(self, config: STTRConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.layout = get_layout(cfg.layout)
        adjacency = graph_adjacency(self.layout, cfg.graph_mode)
        fixed = adjacency if cfg.agcn_graph == "skeleton" else np.full_like(adjacency, 1e-6)
        # The GCN branch of augmented SSA (spatial_only_attention=False) copies the model's graph when it is built; in
        # the reference the first adaptive unit has overwritten that graph with 1e-6 by then (spec §1.4), so with
        # adaptive GCNs it sees the same fixed graph as they do.
        ssa_graph = fixed if cfg.graph_conv == "agcn" else adjacency
        c, v, m = cfg.network_channels, cfg.num_joints, cfg.num_persons
        self.input_norm = nn.BatchNorm1d(m * v * c) if cfg.input_norm else None

        def graph_conv(cin: int, cout: int) -> nn.Module:
            if cfg.graph_conv == "agcn":
                return AdaptiveGraphConv(cin, cout, fixed)
            return GraphConv(cin, cout, adjacency, mask_learning=cfg.mask_learning, local_bn=cfg.gcn_local_bn)

        w1 = cfg.stage_widths()[0]
        self.stem_gcn = self.stem_tcn = None
        if not cfg.attention_in_all_layers:
            self.stem_gcn = graph_conv(c, w1)
            self.stem_tcn = TemporalConv(w1, w1, 9)  # the reference hard-wires 9 taps and no dropout here
        self.blocks = nn.ModuleList()
        for (cin, cout, stride, stage), rel in zip(cfg.units(), self._relative_lengths()):
            attention_unit = cfg.attention_in_all_layers or stage >= 1
            if attention_unit and cfg.spatial:
                gcn: nn.Module = SpatialAttention(
                    cin, cout, ssa_graph, cfg.num_heads, cfg.key_factor, cfg.value_factor, cfg.spatial_only_attention,
                    cfg.attention_input_norm, cfg.attention_skip, cfg.drop_connect, cfg.relative, cfg.more_channels,
                    cfg.more_channels_divisor)
            else:
                gcn = graph_conv(cin, cout)
            if attention_unit and cfg.temporal:
                tcn: nn.Module = TemporalAttention(
                    cout, cout, stride, v, cfg.num_heads, cfg.key_factor, cfg.value_factor,
                    cfg.temporal_only_attention, cfg.attention_input_norm, cfg.attention_skip, cfg.drop_connect,
                    rel, self._window(stage), cfg.more_channels, cfg.more_channels_divisor, 9, cfg.dropout)
            else:
                tcn = TemporalConv(cout, cout, cfg.temporal_kernel_size, stride, cfg.dropout)
            residual = None if (cin == cout and stride == 1) else TemporalConv(cin, cout, 1, stride)
            self.blocks.append(STTRBlock(gcn, tcn, residual))
        self.out_channels = cfg.units()[-1][1]
        self.head = nn.Linear(self.out_channels, cfg.num_classes)
        init_conv_fan_out(self.head.weight)
        self._empty_cache: dict[tuple, torch.Tensor] = {}
        self._cache_stamp: tuple | None = None
        self._length_ok: set[int] = set()

    # ------------------------------------------------------------------ structure helpers
    def _window(self, stage: int) -> int | None:
        """Windowed-TSA block length: first-stage units of `attention_in_all_layers` only (spec §1.6).

        The reference picks dim_block1/2/3 by the unit width 64/128/256, so double-width models use dim_block2.
        """
        cfg = self.config
        if not cfg.attention_in_all_layers or stage != 0:
            return None
        return cfg.window_blocks[min(2, stage + (1 if cfg.double_channel else 0))]

    def _relative_lengths(self) -> list[int | None]:
        """Per unit, the attended length relative TSA tables are built for (from `relative_frames`)."""
        cfg = self.config
        out: list[int | None] = []
        t = cfg.relative_frames
        for i, (_, _, stride, stage) in enumerate(cfg.units()):
            taps = qkv_taps(stride, cfg.num_joints, cfg.more_channels, self._window(stage) is not None)
            out.append((t - taps) // stride + 1 if cfg.relative and cfg.temporal else None)
            t = (t - 1) // stride + 1
        return out

    def check_length(self, t: int) -> None:
        """Raise ValueError when the network cannot run on windows of t frames."""
        t0 = t
        if t < 1:
            raise ValueError(f"expected at least one frame, got T={t}")
        for i, block in enumerate(self.blocks):
            tsa = block.tcn
            if isinstance(tsa, TemporalAttention):
                stride, seen = tsa.stride, tsa.attended_length(t)
                where = f"STTR unit {i} (temporal attention, stride {stride}, V={self.config.num_joints})"
                if seen < 1 or seen != (t - 1) // stride + 1:
                    raise ValueError(
                        f"{where}: T={t} frames at its input give {seen} attended frames but the residual gives "
                        f"{(t - 1) // stride + 1}; with an odd number of joints T-TR needs T divisible by 4 "
                        f"(got a window of T={t0})")
                if tsa.window is not None and seen % tsa.window:
                    raise ValueError(f"{where}: windowed attention needs the length at this unit ({seen}) to be a "
                                     f"multiple of the block length {tsa.window}")
                length = tsa.window if tsa.window is not None else seen
                if tsa.relative_length is not None and length != tsa.relative_length:
                    raise ValueError(f"{where}: relative positions were built for {tsa.relative_length} attended "
                                     f"frames (relative_frames={self.config.relative_frames}), got {length}; "
                                     f"use windows of T={self.config.relative_frames}")
            t = (t - 1) // (block.residual.conv.stride[0] if block.residual is not None else 1) + 1

    # ------------------------------------------------------------------ forward
    def _validate(self, x: torch.Tensor) -> torch.Tensor:
        """The window checked (shape, dtype, finite values, a length the network takes) and in the weights' dtype
        (float64 or float16 windows are converted, not refused with torch's 'expected scalar type' error)."""
        cfg = self.config
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"STTR expects a window (N, C, T, V, M) = (N, {cfg.in_channels}, T, {cfg.num_joints}, "
                             f"{cfg.num_persons}), got {shape}")
        _, c, t, v, m = x.shape
        if c != cfg.in_channels or v != cfg.num_joints or m != cfg.num_persons:
            raise ValueError(
                f"STTR expects (N, C={cfg.in_channels}, T, V={cfg.num_joints} joints of layout {self.layout.name!r}, "
                f"M={cfg.num_persons}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"STTR expects a floating-point window (float32), got {x.dtype}")
        dtype = self.head.weight.dtype
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(dtype)
        if _tracing():
            return x
        if not bool(torch.isfinite(x).all()):
            raise ValueError("STTR input contains NaN or inf values; expected finite joint coordinates")
        self._check_length_cached(int(t))
        return x

    def _check_length_cached(self, t: int) -> None:
        if t not in self._length_ok:
            self.check_length(t)
            self._length_ok.add(t)

    def _with_motion(self, x: torch.Tensor) -> torch.Tensor:
        """The window with its frame-to-frame differences (config.motion); the last frame's difference is 0."""
        if self.config.motion == "none":
            return x
        diff = torch.cat([x[:, :, 1:] - x[:, :, :-1], torch.zeros_like(x[:, :, :1])], dim=2)
        return diff if self.config.motion == "only" else torch.cat([x, diff], dim=1)

    def _fold(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, C, T, V, M) -> data-normalised (N*M, C, T, V) and, with concat_original, the raw copy.

        Both come out channels-last (memory order N*M, T, V, C): the 1x1 convs, graph convs and attention
        projections are then plain matmuls on contiguous token rows, and the temporal convs run oneDNN's
        channels-last kernels. Every block keeps that order, so the network makes no layout copies between blocks.
        """
        x = self._with_motion(x)
        n, c, t, v, m = x.shape

        def folded(y: torch.Tensor) -> torch.Tensor:  # (N, C, T, V, M) -> (N*M, C, T, V) channels-last
            return y.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c).permute(0, 3, 1, 2)

        raw = folded(x) if self.config.concat_original else None
        norm = self.input_norm
        if norm is None:
            return (raw if raw is not None else folded(x)), raw
        if not norm.training and norm.track_running_stats:  # eval: the BN is one affine map per (m, v, c)
            scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
            shift = norm.bias - norm.running_mean * scale  # channel (m*V + v)*C + c (spec §1.1)
            return folded(torch.addcmul(shift.view(m, v, c).permute(2, 1, 0).unsqueeze(1), x,
                                        scale.view(m, v, c).permute(2, 1, 0).unsqueeze(1))), raw
        y = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)  # channel (m*V + v)*C + c (spec §1.1)
        y = norm(y).view(n, m, v, c, t).permute(0, 1, 4, 2, 3).reshape(n * m, t, v, c).permute(0, 3, 1, 2)
        return y, raw

    def _trunk(self, x: torch.Tensor, raw: torch.Tensor | None) -> torch.Tensor:
        """(P, C, T, V) person sequences -> pooled features (P, C_last)."""
        if self.stem_gcn is not None:
            x = self.stem_tcn(self.stem_gcn(x))
        for i, block in enumerate(self.blocks):
            if i == RAW_CONCAT_UNIT and raw is not None:
                x = torch.cat([x, raw], dim=1)  # raw coordinates join the 4th unit's input (spec §1.2)
            x = block(x)
        return x.mean(dim=(2, 3))  # (P, C_last)

    def _person_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, M, C_last) pooled per person, skipping all-zero persons in eval mode."""
        n, _, t, _, m = x.shape
        folded, raw = self._fold(x)
        plain = self.training or m == 1 or torch.is_grad_enabled() or _tracing()
        if plain or any(getattr(mod, "keep_weights", False) for mod in self.modules()):
            return self._trunk(folded, raw).view(n, m, -1)
        present = x.abs().amax(dim=(1, 2, 3)).ne(0).reshape(-1)  # (N*M,)
        if bool(present.all()):
            return self._trunk(folded, raw).view(n, m, -1)
        empty = self._empty_features(t, x.dtype, x.device)  # (M, C_last)
        out = empty.unsqueeze(0).expand(n, m, -1).reshape(n * m, -1).clone()
        idx = present.nonzero().squeeze(1)
        if idx.numel():
            keep = torch.channels_last  # indexing returns a plain contiguous tensor
            out[idx] = self._trunk(folded[idx].contiguous(memory_format=keep),
                                   raw[idx].contiguous(memory_format=keep) if raw is not None else None)
        return out.view(n, m, -1)

    def _state_stamp(self) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in list(self.parameters()) + list(self.buffers()))

    def _empty_features(self, t: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Pooled features (M, C_last) of all-zero persons per slot, cached until any parameter/buffer changes."""
        stamp = self._state_stamp()
        if stamp != self._cache_stamp:
            self._empty_cache.clear()
            self._cache_stamp = stamp
        key = (t, dtype, str(device))
        if key not in self._empty_cache:
            c, v, m = self.config.in_channels, self.config.num_joints, self.config.num_persons
            zeros = torch.zeros(1, c, t, v, m, dtype=dtype, device=device)
            folded, raw = self._fold(zeros)
            self._empty_cache[key] = self._trunk(folded, raw).detach()
        return self._empty_cache[key]

    def slot_features(self, x: torch.Tensor, slot: int = 0) -> torch.Tensor:
        """Pooled features (N, C_last) of one person slot of windows x (N, C, T, V, M), data-normalised exactly as
        in `forward` (the other slots are ignored). Trace-friendly: no validation, no caching."""
        n, _, t, v, m = x.shape
        folded, raw = self._fold(x)
        folded = folded.view(n, m, *folded.shape[1:])[:, slot]
        if raw is not None:
            raw = raw.view(n, m, *raw.shape[1:])[:, slot]
        return self._trunk(folded, raw)

    def empty_person_features(self, t: int, dtype: torch.dtype = torch.float32,
                              device: torch.device | str = "cpu") -> torch.Tensor:
        """Pooled features (M, C_last) of an all-zero person in each slot for windows of t frames (eval mode)."""
        with torch.no_grad():
            return self._empty_features(int(t), dtype, torch.device(device)).clone()

    def train(self, mode: bool = True) -> "STTR":
        self._empty_cache.clear()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .double(): drop cached features
        self._empty_cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, C_last): mean over joints, frames and persons (the classifier's input)."""
        x = self._validate(x)
        return self._person_features(x).mean(dim=1)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Logits (N, num_classes) for windows x (N, C, T, V, M) float32 (raw scores, no softmax).

        With `return_attention=True` returns (logits, weights): weights is a list, one per spatial-attention
        unit, of (N, M, T, H, V, V) tensors (query joint i, key joint j; rows sum to 1).
        """
        x = self._validate(x)
        if not return_attention:
            return self.head(self._person_features(x).mean(dim=1))
        units = [b.gcn for b in self.blocks if isinstance(b.gcn, SpatialAttention)]
        for unit in units:
            unit.keep_weights = True
        try:
            logits = self.head(self._person_features(x).mean(dim=1))
        finally:
            for unit in units:
                unit.keep_weights = False
        n, m = x.shape[0], x.shape[4]
        return logits, [u.last_weights.view(n, m, *u.last_weights.shape[1:]) for u in units]
