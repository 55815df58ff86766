"""``sttr-live --checkpoint CKPT``: the bundle of a checkpoint, exported once and cached.

Engines run bundles. For a bare checkpoint, ``sttr export`` (the calibration part) is run in a subprocess, a
file interface, so ``realtime`` imports nothing of ``calibration``. The bundle goes to
``$STTR_CACHE/bundles/<sha256 of the checkpoint>[:16]`` (``~/.cache/sttr`` by default) and is reused while the
checkpoint is unchanged. Exporting needs torch (``pip install 'sttr[export]'``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["bundle_for_checkpoint", "cache_root"]

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$STTR_CACHE`` or ``~/.cache/sttr``."""
    return Path(os.environ.get("STTR_CACHE") or Path.home() / ".cache" / "sttr")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def bundle_for_checkpoint(checkpoint: str | Path, timeout_s: float = 900.0) -> Path:
    """The cached bundle folder of ``checkpoint``, exporting it first when absent.

    Raises:
        FileNotFoundError: no such checkpoint.
        RuntimeError: the export failed (its last error line is in the message).
    """
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist (give a .pt written by `sttr train`, or --bundle)")
    out = cache_root() / "bundles" / _sha256(ckpt)[:16]
    if (out / "bundle.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("exporting %s to a bundle in %s (once; later runs reuse it)", ckpt, out)
    cmd = [sys.executable, "-m", "sttr.calibration.cli.export", str(ckpt), "--out", str(out), "--overwrite"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"exporting {ckpt} took longer than {timeout_s:.0f} s; run `sttr export {ckpt} --out DIR` "
                           f"yourself and pass --bundle DIR") from None
    if res.returncode != 0 or not (out / "bundle.json").is_file():
        last = (res.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"could not export {ckpt} to a bundle ({last}); try `sttr export {ckpt} --out DIR` and "
                           f"--bundle DIR")
    return out
