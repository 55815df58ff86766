"""`sttr attention CKPT --sample FILE.npy --out DIR [--gif]`: spatial-attention heatmaps of a sample.

CKPT is an sttr checkpoint (`sttr convert` makes one from a reference ST-TR checkpoint). The sample is one
window (C, T, V, M) float32 as stored in the generated datasets, or (N, C, T, V, M) with `--index`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]

MIN_SIZE = 64  # below this the joint names on the axes leave no room for the map


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr attention", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="sttr checkpoint (.pt)")
    p.add_argument("--sample", type=Path, required=True, help=".npy window (C, T, V, M) or a batch (N, C, T, V, M)")
    p.add_argument("--index", type=int, default=0, help="which window of a batch file (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the PNG/GIF files")
    p.add_argument("--person", type=int, default=0, help="person slot to show (default 0)")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF over frames per layer")
    p.add_argument("--size", type=int, default=640, help=f"image size in pixels, at least {MIN_SIZE} (default 640)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ..bundle import not_a_checkpoint
    from ..checkpoint import load_checkpoint
    from ..heatmap import render_attention

    if args.size < MIN_SIZE:
        print(f"sttr attention: --size must be at least {MIN_SIZE} pixels, got {args.size}", file=sys.stderr)
        return 2
    folder = not_a_checkpoint(args.checkpoint)
    if folder:
        print(f"sttr attention: {folder}", file=sys.stderr)
        return 2
    if not args.sample.is_file():
        print(f"sttr attention: sample file {args.sample} does not exist", file=sys.stderr)
        return 2
    try:
        data = np.load(args.sample, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        print(f"sttr attention: {args.sample}: not a .npy array of windows (C, T, V, M) or (N, C, T, V, M) "
              f"({str(err).splitlines()[0] if str(err) else type(err).__name__})", file=sys.stderr)
        return 2
    if not isinstance(data, np.ndarray) or data.ndim not in (4, 5):
        print(f"sttr attention: {args.sample}: expected a window (C, T, V, M) or a batch (N, C, T, V, M), got "
              f"{'an archive of arrays' if not isinstance(data, np.ndarray) else f'shape {data.shape}'}",
              file=sys.stderr)
        return 2
    if data.ndim == 5:
        if not 0 <= args.index < data.shape[0]:
            print(f"sttr attention: --index must be in [0, {data.shape[0]}), got {args.index}", file=sys.stderr)
            return 2
        data = data[args.index]
    try:
        model = load_checkpoint(args.checkpoint).build_model()
        files = render_attention(model, np.ascontiguousarray(data, dtype=np.float32), args.out, person=args.person,
                                 gif=args.gif, size_px=args.size)
    except (ValueError, FileNotFoundError) as err:
        print(f"sttr attention: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
