"""The form of a network that is exported to ONNX: the same function, arranged for the compiled graph.

`export_form(model)` returns an eval-mode copy (the model itself is not touched) in which

* spatial-attention blocks keep their q/v channels head-minor (`SpatialAttention.use_head_minor_channels`): ONNX
  Runtime then splits and merges heads with transposes that move the innermost axis, several times faster than the
  head-major ones (S-TR INT8, T = 64, one thread: ~250 us -> ~20-70 us per transpose); and q, k, v are three convs
  instead of one conv and a Split (`use_separate_projections`, ~1 %);
* the 1x1 residual conv of the unit that reads raw coordinates next to features (`concat_original`, which INT8
  keeps in float) is a MatMul over channels-last tokens with its BN folded in: as a float conv it ran in ONNX
  Runtime's NCHW layout, and every unit after it up to the next integer conv (the data norms and residual adds of
  units 4-6) followed it there (S-TR INT8, two persons: 30.8 -> 29.8 ms);
* graph convolutions aggregate joints first, then run one conv (`GraphConv.use_aggregate_first`): S-TR INT8, two
  persons 29.8 -> 28.8 ms, one person 15.6 -> 15.0 ms, FP32 1-2 % faster.

The logits are the same; every bundle's parity check compares the exported graph with the unmodified model.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from sttr.model.config import RAW_CONCAT_UNIT

__all__ = ["export_form"]


@functools.lru_cache(maxsize=1)
def _pointwise_class():
    import torch
    import torch.nn.functional as F

    class ChannelsLastPointwise(torch.nn.Module):
        """An eval-mode 1x1 `TemporalConv` (conv -> BN -> ReLU, stride s on T) as a MatMul over channels-last
        tokens."""

        def __init__(self, unit) -> None:
            super().__init__()
            conv, norm = unit.conv, unit.norm
            scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
            weight = conv.weight.detach()[:, :, 0, 0] * scale[:, None]  # (Cout, Cin), BN folded
            bias = (conv.bias.detach() if conv.bias is not None else 0) * scale + norm.bias - norm.running_mean * scale
            self.register_buffer("weight_t", weight.t().contiguous().detach())
            self.register_buffer("bias", bias.detach())
            self.stride = int(conv.stride[0])
            self.conv = conv  # kept for the network's geometry checks (stride); its weights are not exported

        def forward(self, x):
            tokens = x.permute(0, 2, 3, 1)[:, ::self.stride]  # (NM, ceil(T/s), V, Cin): the frames a 1x1 conv reads
            y = torch.matmul(tokens, self.weight_t) + self.bias  # (NM, ceil(T/s), V, Cout)
            return F.relu(y).permute(0, 3, 1, 2)

    return ChannelsLastPointwise


def _is_pointwise(unit) -> bool:
    conv = getattr(unit, "conv", None)
    return (conv is not None and tuple(conv.kernel_size) == (1, 1) and conv.stride[1] == 1
            and tuple(conv.padding) == (0, 0)
            and getattr(unit, "norm", None) is not None and unit.norm.track_running_stats)


def export_form(model: Any) -> Any:
    """An eval-mode copy of `model` arranged for export (see the module notes)."""
    form = copy.deepcopy(model).eval()
    for module in form.modules():
        if hasattr(module, "use_head_minor_channels"):
            module.use_head_minor_channels()
            module.use_separate_projections()
        if hasattr(module, "use_aggregate_first"):
            module.use_aggregate_first()
    for network in list(form.modules()):  # the model, or each stream of a fusion
        blocks = getattr(network, "blocks", None)
        if getattr(getattr(network, "config", None), "concat_original", False) and blocks is not None \
                and len(blocks) > RAW_CONCAT_UNIT:
            unit = blocks[RAW_CONCAT_UNIT]
            if getattr(unit, "residual", None) is not None and _is_pointwise(unit.residual):
                unit.residual = _pointwise_class()(unit.residual)
    return form
