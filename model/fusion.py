"""Score fusion of several streams at inference (spec §5): weighted sums of raw logits.

ST-TR = S-TR + T-TR; the bones variants add joint+bone streams. `Ensemble` is an nn.Module over several
models, each with an optional input transform (e.g. `JointsToBones` for a stream trained on joints ‖ bones),
so the fused network runs (and exports) as one module on the same (N, C, T, V, M) window. A fused bundle
(`sttr export A.pt B.pt`) stores the streams' checkpoints and how to rebuild it (`load_fused`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .skeleton import Layout, get_layout

__all__ = ["Ensemble", "JointsToBones", "stream_transform", "load_fused", "load_bundle_network", "fuse_scores"]


class JointsToBones(nn.Module):
    """(N, C, T, V, M) joints -> joints ‖ bones (`concat=True`, 2C channels) or bones only, as `preprocess.bones`.

    bone[v] = joint[v] - joint[bone_parents[v]] on coordinate channels (a root's bone is zero, a zero joint gives
    bone = -parent, spec §4.5). A score channel (2-D layouts) becomes the mean of the two joints' scores, or with
    `legacy=True` is differenced too, as the reference Kinetics script does.
    """

    def __init__(self, layout: str | Layout | dict, concat: bool = True, legacy: bool = False) -> None:
        super().__init__()
        self.layout = get_layout(layout)
        self.concat = concat
        self.legacy = legacy
        self.register_buffer("parents", torch.tensor(self.layout.bone_parents, dtype=torch.long), persistent=False)
        score = [c not in ("x", "y", "z") and not legacy for c in self.layout.channels]
        self.averages_scores = any(score)
        self.register_buffer("score_mask", torch.tensor(score, dtype=torch.float32).view(1, -1, 1, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parent = x.index_select(3, self.parents)
        bones = x - parent
        if self.averages_scores:  # a blend, not indexing, so the exported graph stays one elementwise chain
            mask = self.score_mask.to(x.dtype)
            bones = bones * (1 - mask) + (0.5 * (x + parent)) * mask
        return torch.cat([x, bones], dim=1) if self.concat else bones


def stream_transform(layout: str | Layout | dict, window_bones: str, stream_bones: str,
                     legacy_bones: bool = False) -> nn.Module | None:
    """The module turning a window prepared with `bones=window_bones` into what a stream trained on
    `bones=stream_bones` reads (None when they are the same).

    Only joints can be turned into the other forms; a window of bones (`only`) or joints ‖ bones (`merge`) feeds
    only streams of the same form.
    """
    if window_bones == stream_bones:
        return None
    if window_bones != "none":
        raise ValueError(f"a stream trained on bones={stream_bones!r} cannot read windows prepared with "
                         f"bones={window_bones!r}; only joints (bones='none') convert to the other forms")
    if stream_bones not in ("merge", "only"):
        raise ValueError(f"unknown bones mode {stream_bones!r}; expected 'none', 'only' or 'merge'")
    return JointsToBones(layout, concat=stream_bones == "merge", legacy=legacy_bones)


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


def load_fused(fusion: Mapping[str, Any], root: str | Path, layout: str | Layout | dict,
               device: str | torch.device = "cpu") -> Ensemble:
    """The fused network of a bundle's `fusion` entry (see `sttr.model.bundle`), in eval mode on `device`.

    Args:
        fusion: `{'window_bones': mode of the bundle's windows, 'streams': [{'checkpoint': file in root, 'weight',
            'bones': the stream's training mode, 'legacy_bones'}]}`.
        root: The bundle folder.
        layout: The bundle's layout.
    """
    from .checkpoint import load_checkpoint

    models, weights, transforms = [], [], []
    for stream in fusion["streams"]:
        models.append(load_checkpoint(Path(root) / stream["checkpoint"]).build_model(device))
        weights.append(float(stream["weight"]))
        transforms.append(stream_transform(layout, fusion["window_bones"], stream["bones"],
                                           bool(stream.get("legacy_bones", False))))
    return Ensemble(models, weights, transforms).to(device).eval()


def load_bundle_network(bundle: Any, device: str | torch.device = "cpu") -> nn.Module:
    """The PyTorch network of a verified bundle (`sttr.model.bundle.BundleInfo`), in eval mode: its fusion, or the
    single network of `model.pt`.

    Raises:
        ValueError: the bundle holds no checkpoint (exported with --no-checkpoint).
    """
    from .checkpoint import load_checkpoint

    if bundle.fusion:
        return load_fused(bundle.fusion, bundle.root, bundle.input.layout, device)
    if bundle.checkpoint_path is None:
        raise ValueError(f"bundle {bundle.root} holds no checkpoint (exported with --no-checkpoint)")
    return load_checkpoint(bundle.checkpoint_path).build_model(device)
