"""Score fusion of several streams at inference (spec §5): weighted sums of raw logits.

ST-TR = S-TR + T-TR; the bones variants add joint+bone streams. `Ensemble` is an nn.Module over several
models, each with an optional input transform (e.g. `JointsToBones` for a stream trained on joints ‖ bones),
so the fused network runs (and exports) as one module on the same (N, C, T, V, M) window.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .skeleton import Layout, get_layout

__all__ = ["Ensemble", "JointsToBones", "fuse_scores"]


class JointsToBones(nn.Module):
    """(N, 3, T, V, M) joints -> (N, 6, T, V, M) joints ‖ bones, bone[v] = joint[v] - joint[bone_parents[v]].

    The arithmetic of the reference bone scripts (spec §4.5): a root's bone is zero, and a zero joint gives
    bone = -parent. With `concat=False` only the bones are returned.
    """

    def __init__(self, layout: str | Layout | dict, concat: bool = True) -> None:
        super().__init__()
        self.layout = get_layout(layout)
        self.concat = concat
        self.register_buffer("parents", torch.tensor(self.layout.bone_parents, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bones = x - x.index_select(3, self.parents)
        return torch.cat([x, bones], dim=1) if self.concat else bones


class Ensemble(nn.Module):
    """Weighted sum of the logits of several models: sum_i w_i * model_i(transform_i(x)).

    Args:
        models: The streams (e.g. an S-TR and a T-TR `STTR`); all must have the same number of classes.
        weights: One weight per model (default 1 each, as the reference's alpha = 1).
        transforms: Optional per-model input transform modules (None = the window as given).
    """

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None,
                 transforms: Sequence[nn.Module | None] | None = None) -> None:
        super().__init__()
        if not models:
            raise ValueError("Ensemble needs at least one model")
        weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        transforms = [None] * len(models) if transforms is None else list(transforms)
        if len(weights) != len(models) or len(transforms) != len(models):
            raise ValueError(f"expected one weight and one transform per model ({len(models)}), got "
                             f"{len(weights)} weights and {len(transforms)} transforms")
        classes = {getattr(getattr(m, "config", None), "num_classes", None) for m in models} - {None}
        if len(classes) > 1:
            raise ValueError(f"all streams must predict the same classes, got num_classes {sorted(classes)}")
        self.models = nn.ModuleList(models)
        self.transforms = nn.ModuleList([t if t is not None else nn.Identity() for t in transforms])
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fused logits (N, num_classes) for windows x (N, C, T, V, M)."""
        out = None
        for i, (model, transform) in enumerate(zip(self.models, self.transforms)):
            y = model(transform(x)) * self.weights[i].to(x.dtype)
            out = y if out is None else out + y
        return out


def fuse_scores(scores: Sequence[np.ndarray | torch.Tensor], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted sum of per-stream score arrays (N, K) (raw logits, as the reference's ensemble)."""
    arrays = [np.asarray(s.detach().cpu() if isinstance(s, torch.Tensor) else s, dtype=np.float64) for s in scores]
    if not arrays:
        raise ValueError("fuse_scores needs at least one score array")
    weights = [1.0] * len(arrays) if weights is None else list(weights)
    if len(weights) != len(arrays):
        raise ValueError(f"expected {len(arrays)} weights (one per stream), got {len(weights)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"score arrays must have the same shape (N, K), got {sorted(shapes)}")
    return sum(w * a for w, a in zip(weights, arrays))
