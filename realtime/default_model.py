"""The model ``sttr-live`` uses when the user gives neither ``--bundle`` nor ``--checkpoint``.

The lead ships a small demo bundle in the repository (ST-TR trained on MSR Action3D, ``kinect20`` layout).
``DEFAULT_BUNDLE_DIR`` is the hook for its location: fill it in (relative to this package, or absolute); the
environment variable ``STTR_DEFAULT_BUNDLE`` overrides it at run time.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_BUNDLE_DIR", "DefaultModelMissingError", "default_bundle_dir"]

# The demo bundle shipped in the package (see demo/bundle/MODEL_CARD.md).
DEFAULT_BUNDLE_DIR: Path | None = Path(__file__).resolve().parent / "demo" / "bundle"


class DefaultModelMissingError(FileNotFoundError):
    """No default bundle is installed."""


def default_bundle_dir() -> Path:
    """The default bundle folder (``$STTR_DEFAULT_BUNDLE``, else ``DEFAULT_BUNDLE_DIR``).

    Raises:
        DefaultModelMissingError: none is configured, or its ``bundle.json`` is absent; the message says what to do.
    """
    env = os.environ.get("STTR_DEFAULT_BUNDLE")
    path = Path(env) if env else DEFAULT_BUNDLE_DIR
    if path is None:
        raise DefaultModelMissingError(
            "no default model is installed: pass --bundle DIR (made by `sttr export`) or --checkpoint CKPT, "
            "or set STTR_DEFAULT_BUNDLE to a bundle folder")
    if not (path / "bundle.json").is_file():
        raise DefaultModelMissingError(
            f"the default model bundle {path} is missing (no bundle.json there): reinstall sttr, pass --bundle DIR "
            f"or --checkpoint CKPT, or set STTR_DEFAULT_BUNDLE to a bundle folder")
    return path
