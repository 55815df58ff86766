"""Output files of the live commands (--latency-json, --out) are checked before a run, not found unwritable after it
and its results lost."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_output_path"]


def check_output_path(path: str | None, flag: str) -> None:
    """ValueError naming ``flag`` when ``path`` could not be written (written atomically: a temporary file in its
    folder, then renamed, so the folder must be writable); None passes."""
    if not path:
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ValueError(f"{flag}: {target} is a folder; expected a file name, e.g. {target / 'report.json'}")
    if not folder.is_dir():
        raise ValueError(f"{flag}: folder {folder} does not exist; create it or give another path")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"{flag}: {target} is not writable (permission denied); give another path")
