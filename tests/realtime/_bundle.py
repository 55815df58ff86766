"""A real bundle for pipeline tests: the `nano` preset on the OpenPose-18 layout, exported with `sttr export`.

Exporting takes ~10-20 s on two cores, so it is done once per test session (the tests that use it are `slow`).
Import the fixture into a test module with `from ._bundle import nano_bundle  # noqa: F401`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ["clean_and_jerk", "swimming", "tai_chi", "walking", "waving"]
WINDOW = 64
_CACHE: dict[str, Path] = {}


def make_nano_bundle(folder: Path) -> Path:
    """Write a seeded nano checkpoint (openpose18, T = 64 at 30 fps, M = 2) and export it to `folder/bundle`."""
    import torch

    from sttr.calibration.cli.export import main as export_main
    from sttr.model.checkpoint import save_checkpoint
    from sttr.model.config import preset
    from sttr.model.preprocess import PreprocessSpec
    from sttr.model.sttr import STTR

    torch.manual_seed(0)
    config = preset("nano", layout="openpose18", in_channels=3, num_joints=18, num_persons=2,
                    num_classes=len(LABELS))
    ckpt = save_checkpoint(folder / "nano_op18.pt", STTR(config).eval(), labels=LABELS,
                           preprocess=PreprocessSpec(layout="openpose18", window=WINDOW, fps=30.0, persons=2).to_dict(),
                           meta={"dataset": "untrained test model"})
    out = folder / "bundle"
    rc = export_main([str(ckpt), "--out", str(out), "--window", str(WINDOW), "--exporter", "legacy",
                      "--samples", "4", "--overwrite"])
    assert rc == 0, "sttr export failed"
    return out


@pytest.fixture(scope="session")
def nano_bundle(tmp_path_factory) -> Path:
    """The exported nano bundle folder (made once per session)."""
    if "nano" not in _CACHE:
        _CACHE["nano"] = make_nano_bundle(tmp_path_factory.mktemp("nano_bundle"))
    return _CACHE["nano"]
