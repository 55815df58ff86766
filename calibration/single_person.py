"""The single-person graph of a bundle: logits of windows whose person slots other than slot 0 are all zero.

Most live and NTU windows hold one person in slot 0 and zeros elsewhere. An all-zero person's pooled feature does
not depend on the input (data batch-norm and the trunk turn zeros into a per-slot constant for a given T), so
`SinglePersonSTTR` runs the trunk on slot 0 only and takes the empty slots' features from a buffer computed at
export time (a fusion does this in every stream). On such windows it gives the full model's logits at about 1/M of
the cost; on any other window it is wrong, so engines route only windows whose slots 1.. are exactly zero to it
(`sttr.realtime.engines.base.first_person_only`). It needs a fixed T (the buffer is per T), so it is not exported
with `--dynamic-time`.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SinglePersonSTTR", "supports_single_person", "zero_other_persons", "export_single_person", "P1_FILE",
           "p1_key"]

log = logging.getLogger(__name__)

P1_FILE = "model.p1.onnx"


def p1_key(precision: str) -> str:
    """The `models` key of the single-person graph of a precision (`p1.fp32`, `p1.int8`, `p1.fp16`)."""
    return f"p1.{precision}"


def _streams(model: Any) -> list:
    """The networks of a model: a fusion's streams (`Ensemble.models`), or the model itself."""
    return list(model.models) if hasattr(model, "models") and hasattr(model, "transforms") else [model]


def supports_single_person(model: Any, dynamic_time: bool) -> bool:
    """True when a single-person graph can be made: an STTR (or a fusion of them) with M >= 2 person slots and a
    fixed T."""
    return not dynamic_time and all(
        hasattr(net, "slot_features") and hasattr(net, "empty_person_features") and int(net.config.num_persons) >= 2
        for net in _streams(model))


def zero_other_persons(windows: np.ndarray) -> np.ndarray:
    """A copy of windows (N, C, T, V, M) with every slot but slot 0 set to zero."""
    out = np.array(windows, dtype=np.float32, copy=True)
    out[..., 1:] = 0.0
    return out


@functools.lru_cache(maxsize=1)
def _torch_module():
    import torch

    class SinglePersonSTTR(torch.nn.Module):
        """Wraps an eval-mode STTR for windows of `t` frames whose slots 1.. are all zero.

        Args:
            model: The STTR (eval mode; its weights are shared, not copied).
            t: The bundle's fixed window length T.
        """

        def __init__(self, model, t: int) -> None:
            super().__init__()
            model.eval()
            self.model = model
            self.t = int(t)
            empty = model.empty_person_features(self.t)  # (M, C_last)
            self.register_buffer("empty_sum", empty[1:].sum(dim=0, keepdim=True))  # (1, C_last)
            self.persons = int(model.config.num_persons)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Logits (N, K) of windows x (N, C, T, V, M) float32 whose slots 1.. are zero (not checked)."""
            first = self.model.slot_features(x, 0)  # (N, C_last)
            pooled = (first + self.empty_sum) / self.persons
            return self.model.head(pooled)

    return SinglePersonSTTR


def __getattr__(name: str):  # torch is imported only when the class is used
    if name == "SinglePersonSTTR":
        return _torch_module()
    raise AttributeError(name)


def export_single_person(model, path: str | Path, *, example: np.ndarray, opset: int, exporter: str) -> dict[str, Any]:
    """Export the single-person graph of `model` for the fixed T of `example` to `path` (see `export_onnx`)."""
    from .export_onnx import export_onnx

    single, t = _torch_module(), int(example.shape[2])
    if _streams(model) == [model]:
        wrapper = single(model, t).eval()
    else:  # each stream on slot 0; the fusion's transforms keep zero slots zero (bones of zeros are zeros)
        from sttr.model.fusion import Ensemble

        wrapper = Ensemble([single(net, t) for net in model.models], model.weights.tolist(),
                           list(model.transforms)).eval()
    return export_onnx(wrapper, path, example=zero_other_persons(example), opset=opset, exporter=exporter,
                       dynamic_time=False)
