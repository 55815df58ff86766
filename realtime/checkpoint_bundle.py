"""``sttr-live --checkpoint CKPT [CKPT ...]``: the bundle of a checkpoint (or of several fused), exported once and
cached.

Engines run bundles. For bare checkpoints, ``sttr export`` (the calibration part) is run in a subprocess, a
file interface, so ``realtime`` imports nothing of ``calibration``. The bundle goes to
``$STTR_CACHE/bundles/<sha256>[:16]`` (``~/.cache/sttr`` by default; the hash of the checkpoint, or of the fused
checkpoints' hashes and weights) and is reused while they are unchanged. Exporting needs torch
(``pip install 'sttr[export]'``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

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


def bundle_for_checkpoint(checkpoint: str | Path | Sequence[str | Path], timeout_s: float = 900.0,
                          weights: Sequence[float] | None = None) -> Path:
    """The cached bundle folder of ``checkpoint`` (several: their fusion, with ``weights``), exporting it first when
    absent.

    Raises:
        FileNotFoundError: no such checkpoint.
        RuntimeError: the export failed (its last error line is in the message).
    """
    ckpts = [Path(c) for c in ([checkpoint] if isinstance(checkpoint, (str, Path)) else checkpoint)]
    for ckpt in ckpts:
        if not ckpt.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} does not exist (give a .pt written by `sttr train`, or "
                                    f"--bundle)")
    if len(ckpts) == 1 and not weights:
        key = _sha256(ckpts[0])
    else:  # what the fused bundle depends on: each stream, in order, and the weights
        key = hashlib.sha256(repr(([_sha256(c) for c in ckpts], [float(w) for w in weights or []])).encode())\
            .hexdigest()
    out = cache_root() / "bundles" / key[:16]
    if (out / "bundle.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    what = " + ".join(str(c) for c in ckpts)
    logger.warning("exporting %s to a bundle in %s (once; later runs reuse it)", what, out)
    cmd = [sys.executable, "-m", "sttr.calibration.cli.export", *map(str, ckpts), "--out", str(out), "--overwrite"]
    if weights:
        cmd += ["--weights", *(str(float(w)) for w in weights)]
    by_hand = f"`sttr export {' '.join(map(str, ckpts))} --out DIR`"
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"exporting {what} took longer than {timeout_s:.0f} s; run {by_hand} yourself and pass "
                           f"--bundle DIR") from None
    if res.returncode != 0 or not (out / "bundle.json").is_file():
        last = (res.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"could not export {what} to a bundle ({last}); try {by_hand} and --bundle DIR")
    return out
