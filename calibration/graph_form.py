"""The form of a network that is exported to ONNX: the same function, parameters arranged for the compiled graph.

`export_form(model)` returns a copy (the model itself is not touched) whose spatial-attention blocks keep their
q/k/v channels head-minor (`SpatialAttention.use_head_minor_channels`): ONNX Runtime then splits and merges heads
with transposes that move the innermost axis, several times faster than the head-major ones (S-TR INT8, T = 64,
one thread: the four attention transposes of a block went from ~250 to ~20-70 us each). The logits are the same;
every bundle's parity check compares the exported graph with the unmodified model.
"""
from __future__ import annotations

import copy
from typing import Any

__all__ = ["export_form"]


def export_form(model: Any) -> Any:
    """An eval-mode copy of `model` arranged for export (see the module notes)."""
    form = copy.deepcopy(model).eval()
    for module in form.modules():
        if hasattr(module, "use_head_minor_channels"):
            module.use_head_minor_channels()
    return form
