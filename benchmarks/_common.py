"""What the benchmark scripts share: checked arguments, one-line errors, output files checked before a run (not found
unwritable after it) and written atomically, and what a report records about the machine and software.

The scripts import it as a sibling module (`python benchmarks/x.py` puts this folder first on sys.path).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from sttr.realtime.latency import machine_info, write_json

REPO = Path(__file__).resolve().parent.parent
# the distributions whose versions a report records (alternatives: the one installed)
PACKAGES = ("numpy", "torch", "onnxruntime|onnxruntime-gpu", "onnx", "tensorrt|tensorrt-cu12|tensorrt-cu11")
# what a benchmark's inputs and settings can raise that is the user's to fix: one line, not a traceback
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ImportError, ValueError, KeyError)

__all__ = ["at_least", "positive_float", "int_list", "check_out", "write_report", "environment", "fail",
           "USER_ERRORS", "REPO"]


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `least` (argparse then says `argument --x: must be >= 1, got 0`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def int_list(least: int) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated integers, each >= `least` (e.g. `64,300`)."""
    one = at_least(least)

    def parse(text: str) -> list[int]:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
        return [one(t) for t in items]
    return parse


def check_out(path: str | os.PathLike | None, flag: str = "--out") -> None:
    """ValueError naming `flag` when a report could not be written to `path` (checked before a run, so that its
    results are not lost at the end); the live commands' check. None passes."""
    from sttr.realtime.cli.output_path import check_output_path

    check_output_path(None if path is None else str(path), flag)


def write_report(path: str | os.PathLike, report: Any) -> None:
    """Write `report` as indented JSON atomically (readers see the old file or the new one); NaN/inf -> null."""
    write_json(path, report)


def _git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def environment(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The machine (CPU model and count, load, platform, Python), the versions of numpy/torch/onnxruntime/onnx/
    TensorRT, torch's CPU threads and CUDA device when torch is loaded, the git HEAD, and the run's `settings`
    (e.g. `vars(args)`, paths as strings)."""
    info = machine_info(PACKAGES)
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    info["git_head"] = _git_head()
    if settings is not None:
        info["settings"] = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in settings.items()}
    return info


def fail(prog: str, problem: BaseException | str) -> int:
    """Print `prog: error: <the problem's first line>` to stderr; returns the exit status 2."""
    if isinstance(problem, KeyError) and problem.args:  # str(KeyError) is the repr of its message
        problem = str(problem.args[0])
    text = str(problem) or repr(problem)
    print(f"{prog}: error: {text.splitlines()[0]}", file=sys.stderr)
    return 2
