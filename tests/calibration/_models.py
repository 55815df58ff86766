"""Small trained-enough nano checkpoints and bundles for the calibration and engine tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

T = 64  # live window of the test bundles


def preprocess_dict(bones: str = "none") -> dict:
    from sttr.model.preprocess import PreprocessSpec

    return PreprocessSpec(layout="ntu25", window=T, persons=2, bones=bones).to_dict()


def real_windows(shared_data: Path | None):
    """NTU windows (T=64, stride 16) from the shared sample files, or None when they are absent."""
    from sttr.calibration.calibration_data import load_windows

    if shared_data is None or not (shared_data / "ntu60").is_dir():
        return None
    return load_windows(shared_data / "ntu60", T=T, M=2, preprocess=preprocess_dict(), stride=16)


def shared_data_or_none(request) -> Path | None:
    try:
        return request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None


def make_checkpoint(path: Path, windows: np.ndarray | None, labels: np.ndarray | None, *, seed: int = 0,
                    steps: int = 0, bones: str = "none", motion: str = "none") -> Path:
    """A nano STTR (60 classes): batch-norm statistics from `windows` (so activations are realistically scaled),
    then `steps` Adam steps on their labels (0 by default: the shared 2-core machine makes training slow).
    `bones` (`merge` or `only`): a network trained on that form, its windows derived from the joint `windows`.
    `motion`: the network's own frame differences (`STTRConfig.motion`)."""
    import torch

    from sttr.calibration.bundle_writer import synthetic_windows
    from sttr.model.checkpoint import save_checkpoint
    from sttr.model.config import preset
    from sttr.model.fusion import stream_transform
    from sttr.model.sttr import STTR

    torch.manual_seed(seed)
    form = stream_transform("ntu25", "none", bones) or torch.nn.Identity()
    model = STTR(preset("nano", num_classes=60, in_channels=6 if bones == "merge" else 3, motion=motion))
    if windows is None:
        windows = synthetic_windows(16, 3, T, 25, 2, seed=seed)
        labels = np.arange(16) % 4
    x, y = form(torch.from_numpy(windows)), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    # statistics from real and synthetic windows, so neither kind drives a near-zero variance to huge activations
    synthetic = form(torch.from_numpy(synthetic_windows(4, 3, T, 25, 2, seed=seed + 1)))
    stats = torch.cat([x[:: max(1, len(x) // 6)], synthetic])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        model(stats)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:8]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return save_checkpoint(path, model, preprocess=preprocess_dict(bones), meta={"test": True})


def make_bundle(out: Path, ckpt: Path, data: Path | None, **kw) -> dict:
    from sttr.calibration.bundle_writer import ExportOptions, export_bundle

    kw.setdefault("samples", 8)
    return export_bundle(ckpt, out, ExportOptions(exporter="legacy", opset=17, data=data, **kw))
