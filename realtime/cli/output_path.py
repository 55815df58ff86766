"""Output files of the live commands (--latency-json, --out) are checked before a run, not found unwritable after it
and its results lost."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..latency import write_json
from .errors import cli_error

__all__ = ["check_output_path", "write_output_json"]


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
    try:  # what the final write does; os.access says yes to root on read-only or virtual file systems (/proc)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{flag}: cannot write in {folder} ({exc.strerror or exc}); give another path") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{flag}: {target} is not writable (permission denied); give another path")


def write_output_json(path: str, data: Any, flag: str, prog: str) -> int:
    """Write a run's report to `path` (checked at start-up by `check_output_path`); if the folder went away meanwhile,
    one line after the summary already printed; returns the exit status (0, or 2)."""
    try:
        write_json(path, data)
    except OSError as exc:
        return cli_error(prog, f"{flag}: could not write {path}: {exc.strerror or exc}")
    return 0
