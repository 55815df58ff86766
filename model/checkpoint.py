"""Our checkpoint format (`sttr.checkpoint/1`): config, weights, labels, layout, preprocessing and metadata.

Written atomically (temp file in the same folder, then `os.replace`); read with `torch.load(weights_only=True)`,
so a checkpoint holds only tensors and plain Python containers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_open
from .config import STTRConfig
from .skeleton import get_layout
from .sttr import STTR
from .torch_files import load_torch_file

__all__ = ["FORMAT", "Checkpoint", "save_checkpoint", "load_checkpoint"]

FORMAT = "sttr.checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded checkpoint; `build_model()` gives the network in eval mode."""

    config: STTRConfig
    state_dict: dict[str, torch.Tensor]
    labels: list[str] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def build_model(self, device: str | torch.device = "cpu") -> STTR:
        """`STTR(config)` with the stored weights (strict), in eval mode on `device`."""
        model = STTR(self.config)
        model.load_state_dict(self.state_dict, strict=True)
        return model.to(device).eval()


def save_checkpoint(path: str | Path, model: STTR, *, labels: list[str] | None = None,
                    preprocess: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Write `model` and its context to `path` atomically; returns the path.

    Args:
        path: Destination `.pt` file (its folder must exist).
        model: The network; its `config` is stored as a plain dict.
        labels: Class names, one per logit (empty or `num_classes` long).
        preprocess: The preprocessing applied to the training windows (`PreprocessSpec` as a dict).
        meta: Training metadata (dataset, split, epoch, metrics, ...), plain Python values only.
    """
    path = Path(path)
    if isinstance(labels, (str, bytes)) or (labels is not None and not all(isinstance(x, str) for x in labels)):
        raise TypeError(f"labels must be a list of class names (strings), got {labels!r}"[:300])
    labels = list(labels or [])
    if labels and len(labels) != model.config.num_classes:
        raise ValueError(f"expected {model.config.num_classes} labels (one per class), got {len(labels)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint folder {path.parent} does not exist")
    payload = {
        "format": FORMAT, "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "labels": labels, "layout": get_layout(model.config.layout).to_dict(),
        "preprocess": dict(preprocess or {}), "meta": dict(meta or {}),
    }
    with atomic_open(path) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (weights_only: no code is unpickled)."""
    path = Path(path)
    convert_hint = " (a reference ST-TR checkpoint? convert it with `sttr convert`)"
    obj = load_torch_file(path, what="checkpoint", map_location=map_location, trust_hint=convert_hint)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        hint = convert_hint if isinstance(obj, dict) and "format" not in obj else ""
        if isinstance(found, str) and found.startswith("sttr.train_state"):
            hint = " (a training state, what `sttr train --resume` continues from; use the run's best.pt)"
        raise ValueError(f"{path}: expected an sttr checkpoint of format {FORMAT!r}, found {found!r}{hint}")
    missing = [k for k in ("config", "state_dict") if k not in obj]
    if missing:
        raise ValueError(f"{path}: checkpoint is missing {missing}")
    return Checkpoint(config=STTRConfig.from_dict(obj["config"]), state_dict=obj["state_dict"],
                      labels=list(obj.get("labels", [])), layout=dict(obj.get("layout", {})),
                      preprocess=dict(obj.get("preprocess", {})), meta=dict(obj.get("meta", {})),
                      format=obj["format"])
