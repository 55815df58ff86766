"""`sttr eval BUNDLE --data DIR [--precision fp32 int8]`: accuracy of a bundle's ONNX files on a whole split.

`sttr eval` sends a bundle folder (one with bundle.json) here and a checkpoint to the training evaluator.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from sttr.model.bundle import PRECISIONS, BundleError

__all__ = ["main", "build_parser", "is_bundle"]


def is_bundle(path: str) -> bool:
    """True for a folder holding a bundle.json (what `sttr export` writes)."""
    return (Path(path) / "bundle.json").is_file()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sttr eval", description="Accuracy of an exported bundle on a generated split with ONNX Runtime: "
        "top-1/top-5, per-class accuracy, confusion matrix and scores per precision; with several precisions, "
        "their top-1 agreement with the first. (`sttr eval CKPT.pt ...` evaluates a checkpoint with PyTorch.)",
        epilog="example: sttr eval bundles/ntu60 --data data/ntu60/xsub --split test --precision fp32 int8")
    p.add_argument("bundle", help="bundle folder made by `sttr export` (and `sttr calibrate`)")
    p.add_argument("--data", required=True, help="generated dataset folder ({split}_data.npy, {split}_label.pkl)")
    p.add_argument("--split", default="test", help="split name (default: test)")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=PRECISIONS,
                   help="precisions to evaluate (default fp32); the first is the one the others are compared with")
    p.add_argument("--out", help="output folder (default: BUNDLE/eval_SPLIT)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: its own choice)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ..evaluate_bundle import evaluate_bundle

    out = Path(args.out) if args.out else Path(args.bundle) / f"eval_{args.split}"
    try:
        report = evaluate_bundle(args.bundle, args.data, args.split, out_dir=out, precisions=args.precision,
                                 batch_size=args.batch_size, threads=args.threads, show_progress=args.progress)
    except (BundleError, FileNotFoundError, ValueError) as err:
        print(f"sttr eval: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.split}: {report['num_samples']} samples, window {report['window']}, bundle {report['bundle']}")
    for precision, r in report["precisions"].items():
        agree = r.get("agreement")
        extra = (f"  top-1 agreement with {agree['with']} {100 * agree['top1_agreement']:.2f}% "
                 f"({agree['top1_disagreements']} differ)") if agree else ""
        print(f"  {precision:5s} top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%{extra}")
    print(f"scores, confusion matrices and metrics in {out}")
    return 0
