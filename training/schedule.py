"""Learning-rate schedules, per epoch: step decay by a true factor (spec §9 bug 4 fixed) or cosine, with warm-up."""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["lr_factor"]


def lr_factor(epoch: int, *, schedule: str = "step", milestones: Sequence[int] = (), gamma: float = 0.1,
              epochs: int = 1, warmup_epochs: int = 0) -> float:
    """Multiplier of the base learning rate during 0-based `epoch`.

    Step: gamma ** (number of milestones <= epoch) — with base lr 0.1 and milestones 60, 90 this is 0.1 for epochs
    0-59, 0.01 for 60-89, 0.001 from 90 on. Cosine: 0.5 (1 + cos(pi e / epochs)). Warm-up: linear, (e + 1) /
    (warmup_epochs + 1) for the first `warmup_epochs` epochs.
    """
    if schedule == "step":
        factor = gamma ** sum(1 for m in milestones if m <= epoch)
    elif schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / max(1, epochs)))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected 'step' or 'cosine'")
    if epoch < warmup_epochs:
        factor *= (epoch + 1) / (warmup_epochs + 1)
    return factor
