"""The options every command that runs a model takes (`sttr-live`, `sttr serve`), and the one rule that turns
--bundle / --checkpoint / nothing into the bundle folder to open."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..publisher import DEFAULT_PUB_ADDR

__all__ = ["add_model_options", "add_window_options", "add_publish_options", "bundle_dir", "check_counts"]


def add_model_options(p: argparse.ArgumentParser, threads_default: int, threads_help: str) -> None:
    """--bundle | --checkpoint, --backend, --precision, --threads."""
    model = p.add_argument_group("model (default: the bundled demo model)").add_mutually_exclusive_group()
    model.add_argument("--bundle", metavar="DIR", help="bundle folder written by `sttr export`")
    model.add_argument("--checkpoint", metavar="CKPT", nargs="+",
                       help="sttr checkpoint (.pt); exported once to a cached bundle (needs torch); several: their "
                            "fusion (S-TR + T-TR, joints + bones; see sttr export)")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="with several --checkpoint: one fusion weight each (default 1)")
    p.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "onnxruntime", "torch"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=threads_default, metavar="N", help=threads_help)


def add_window_options(p: argparse.ArgumentParser, stride_help: str) -> None:
    """--stride, --window, --top-k, --smoothing."""
    p.add_argument("--stride", type=int, default=8, help=stride_help)
    p.add_argument("--window", type=int, default=None, metavar="T",
                   help="frames of history per window (default: the model's T; shorter windows are loop-padded)")
    p.add_argument("--top-k", type=int, default=5, help="classes per prediction (default 5)")
    p.add_argument("--smoothing", type=float, default=0.0, help="EMA weight of past windows in [0, 1) (default 0)")


def add_publish_options(p: argparse.ArgumentParser) -> None:
    """--pub, --format."""
    p.add_argument("--pub", default=DEFAULT_PUB_ADDR, metavar="ADDR",
                   help=f"publish on ADDR (default {DEFAULT_PUB_ADDR}; loopback only unless you say otherwise)")
    p.add_argument("--format", default="json", choices=("json", "msgpack"), help="payload encoding (default json)")


def check_counts(args: argparse.Namespace) -> None:
    """ValueError naming the flag for counts out of range: --window and --max-frames (when given) and --stride,
    --top-k >= 1, --threads >= 0 (0: every core), --smoothing in [0, 1). 0 or a negative number meant something else
    silently (--window 0: the model's T; --max-frames 0: no limit, -1: one frame)."""
    for flag, value, least in (("--stride", args.stride, 1), ("--top-k", args.top_k, 1),
                               ("--window", args.window, 1), ("--max-frames", getattr(args, "max_frames", None), 1),
                               ("--threads", args.threads, 0)):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be >= {least}" + (" (0: every core)" if flag == "--threads" else "")
                             + f", got {value}")
    if not 0 <= args.smoothing < 1:
        raise ValueError(f"--smoothing must be in [0, 1), got {args.smoothing}")


def bundle_dir(args: argparse.Namespace, prog: str) -> Path:
    """--bundle as given, --checkpoint exported once to a cached bundle, else the bundled demo model (said so)."""
    if args.bundle:
        return Path(args.bundle)
    weights = getattr(args, "weights", None)
    if weights and (not args.checkpoint or len(weights) != len(args.checkpoint) or len(weights) < 2):
        raise ValueError(f"--weights: one weight per --checkpoint of a fusion (two or more), got {len(weights)} "
                         f"weight(s) for {len(args.checkpoint or [])} checkpoint(s)")
    if args.checkpoint:
        from ..checkpoint_bundle import bundle_for_checkpoint

        return bundle_for_checkpoint(args.checkpoint, weights=weights)
    from ..default_model import default_bundle_dir

    path = default_bundle_dir()
    print(f"{prog}: no --bundle or --checkpoint given: using the bundled demo model ({path.name}: ST-TR trained "
          f"on MSR Action3D, 20 actions; see {path / 'MODEL_CARD.md'})", file=sys.stderr)
    return path
