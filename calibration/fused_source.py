"""Several checkpoints as one exportable network: the weighted sum of their logits (S-TR + T-TR, joints + bones).

Every stream must predict the same classes for the same skeletons: one layout, person slots, label names and
normalisation (pre-normalisation, centring, rotation, padding, fps). They may differ in the form they were trained
on (joints, bones or joints ‖ bones): the fused bundle then takes joints and derives each stream's form inside the
graph (`sttr.model.fusion.stream_transform`), so the live path prepares one window for all of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .model_source import ModelSource, load_model_source

__all__ = ["load_fused_source"]

# preprocess fields the streams may differ in: the form of the input and the T they were trained at
_PER_STREAM_FIELDS = ("bones", "legacy_bones", "channels", "window")


def _common_preprocess(sources: Sequence[ModelSource], paths: Sequence[Path]) -> dict[str, Any]:
    """The normalisation all streams share, with the bundle's window form; ValueError naming what differs."""
    from sttr.model.preprocess import PreprocessSpec

    first = PreprocessSpec.from_dict(sources[0].preprocess).to_dict()
    for src, path in zip(sources[1:], paths[1:]):
        other = PreprocessSpec.from_dict(src.preprocess).to_dict()
        diffs = [f"{k}: {first[k]!r} vs {other[k]!r}" for k in first
                 if k not in _PER_STREAM_FIELDS and first[k] != other[k]]
        if diffs:
            raise ValueError(f"cannot fuse {paths[0].name} and {path.name}: their windows are prepared differently "
                             f"({'; '.join(diffs)})")
    # one form shared by every stream (bones mode and its legacy flag) is the bundle's; otherwise joints, from which
    # each stream derives its own form in the graph
    forms = {(src.preprocess.get("bones", "none"), bool(src.preprocess.get("legacy_bones", False))) for src in sources}
    window_bones, legacy = forms.pop() if len(forms) == 1 else ("none", False)
    common = {k: v for k, v in first.items() if k != "channels"}  # re-derived from the window form
    common.update(bones=window_bones, legacy_bones=legacy)
    windows = {int(src.preprocess.get("window", 0)) for src in sources}
    common["window"] = int(first["window"]) if len(windows) == 1 else None
    return common


def load_fused_source(paths: Sequence[str | Path], weights: Sequence[float] | None = None, *,
                      labels: list[str] | None = None, **reference_overrides: Any) -> ModelSource:
    """Load two or more checkpoints (sttr or reference) as one `Ensemble` ready to export.

    Args:
        paths: The streams' checkpoints, in order.
        weights: One weight per stream (default 1 each, as the reference's fusion).
        labels: Label names overriding the checkpoints'.
        **reference_overrides: `STTRConfig` fields for reference checkpoints.

    Returns:
        A `ModelSource` of kind `fusion`: `model` is the `Ensemble`, `streams` the loaded streams, `preprocess` the
        bundle's window form (`window` None when the streams were trained at different T: give one).

    Raises:
        ValueError: fewer than two paths, a wrong number of weights, or streams that cannot be fused (names them and
            what differs).
    """
    from sttr.model.fusion import Ensemble, stream_transform

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"fusion needs two or more checkpoints, got {len(paths)}")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise ValueError(f"expected one weight per checkpoint ({len(paths)}), got {len(weights)}")
    sources = [load_model_source(p, labels=labels, **reference_overrides) for p in paths]
    first = sources[0]
    for src, path in zip(sources[1:], paths[1:]):
        for what, a, b in (("classes", first.config.num_classes, src.config.num_classes),
                           ("person slots", first.config.num_persons, src.config.num_persons),
                           ("joints", first.config.num_joints, src.config.num_joints),
                           ("label names", first.labels, src.labels)):
            if a != b:
                shown = (a, b) if what != "label names" else _first_difference(a, b)
                raise ValueError(f"cannot fuse {paths[0].name} and {path.name}: different {what} "
                                 f"({shown[0]!r} vs {shown[1]!r})")
    preprocess = _common_preprocess(sources, paths)
    transforms = [stream_transform(preprocess["layout"], preprocess["bones"], src.preprocess.get("bones", "none"),
                                   bool(src.preprocess.get("legacy_bones", False))) for src in sources]
    model = Ensemble([src.model for src in sources], weights, transforms).eval()
    return ModelSource(model, list(first.labels), preprocess, {}, "fusion", None, streams=sources, weights=weights)


def _first_difference(a: Sequence[str], b: Sequence[str]) -> tuple[str, str]:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"label {i} {x}", f"{y}"
    return f"{len(a)} labels", f"{len(b)} labels"
