"""Load what `sttr export` exports: an sttr checkpoint or a reference ST-TR checkpoint, with labels and preprocess."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelSource", "load_model_source", "is_sttr_checkpoint"]

log = logging.getLogger(__name__)

_BUILTIN_LABELS_BY_CLASSES = {60: "ntu60", 120: "ntu120", 400: "kinetics400"}


@dataclass
class ModelSource:
    """A network ready to export, with what the bundle records about it.

    Attributes:
        model: `STTR` in eval mode.
        labels: One name per logit.
        preprocess: `PreprocessSpec.to_dict()` of the training windows.
        meta: Training metadata of the checkpoint (empty for reference checkpoints).
        kind: `sttr`, `reference`, or `fusion` (several streams, see `fused_source`).
        path: The checkpoint file read (None for a fusion).
        streams: A fusion's streams, in order (empty otherwise).
        weights: A fusion's stream weights.
    """

    model: Any
    labels: list[str]
    preprocess: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "sttr"
    path: Path | None = None
    streams: list["ModelSource"] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    @property
    def config(self):
        """The network's config; for a fusion the first stream's (classes, joints, persons and layout are shared,
        input channels are not: see `in_channels`)."""
        return (self.streams[0] if self.streams else self).model.config

    @property
    def in_channels(self) -> int:
        """C of the windows the exported graph takes."""
        if not self.streams:
            return int(self.config.in_channels)
        from sttr.model.preprocess import PreprocessSpec

        return PreprocessSpec.from_dict({**self.preprocess, "window": self.preprocess.get("window") or 1}).out_channels

    @property
    def networks(self) -> list:
        """The STTR networks inside (one, or a fusion's streams)."""
        return [s.model for s in self.streams] if self.streams else [self.model]


def is_sttr_checkpoint(path: str | Path) -> bool:
    """True when `path` is a `sttr.checkpoint/1` file (read with weights_only)."""
    import torch

    from sttr.model.checkpoint import FORMAT

    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - reference .ckpt files may hold pickled objects; the converter reads those
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _default_labels(num_classes: int) -> list[str]:
    name = _BUILTIN_LABELS_BY_CLASSES.get(num_classes)
    if name is not None:
        from sttr.training.labels import load_label_names

        labels = load_label_names(name)
        if len(labels) == num_classes:
            return labels
    return [f"class_{i}" for i in range(num_classes)]


def _reference_preprocess(config) -> dict[str, Any]:
    """What the reference's data generators applied (spec §4): NTU legacy pre-normalisation, Kinetics none."""
    from sttr.model.preprocess import PreprocessSpec
    from sttr.model.skeleton import get_layout

    layout = get_layout(config.layout)
    three_d = tuple(layout.channels) == ("x", "y", "z")
    bones = "merge" if config.in_channels == 2 * layout.num_channels else "none"
    spec = PreprocessSpec(layout=config.layout if isinstance(config.layout, str) else layout.to_dict(),
                          pre_normalization="legacy" if three_d else "none", bones=bones, window=300, fps=30.0,
                          persons=config.num_persons)
    return spec.to_dict()


def load_model_source(path: str | Path, *, labels: list[str] | None = None, **reference_overrides: Any) -> ModelSource:
    """Load an sttr checkpoint, or a reference ST-TR checkpoint through `load_reference_checkpoint`.

    Args:
        path: The `.pt` / `.ckpt` file.
        labels: Label names overriding the checkpoint's (required length: num_classes).
        **reference_overrides: `STTRConfig` fields for reference checkpoints (see `load_reference_checkpoint`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: wrong number of labels; the reference converter's errors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if is_sttr_checkpoint(path):
        from sttr.model.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        src = ModelSource(ckpt.build_model(), list(ckpt.labels), dict(ckpt.preprocess), dict(ckpt.meta), "sttr", path)
        if not src.preprocess:
            src.preprocess = _reference_preprocess(src.config)
            log.warning("%s has no preprocess spec; assuming the reference's: %s", path, src.preprocess)
    else:
        from sttr.model.convert import load_reference_checkpoint

        model = load_reference_checkpoint(path, **reference_overrides)
        src = ModelSource(model, [], _reference_preprocess(model.config), {"reference_checkpoint": path.name},
                          "reference", path)
    num_classes = src.config.num_classes
    if labels is not None:
        src.labels = list(labels)
    if not src.labels:
        src.labels = _default_labels(num_classes)
    if len(src.labels) != num_classes:
        raise ValueError(f"expected {num_classes} label names (one per logit), got {len(src.labels)}")
    return src
