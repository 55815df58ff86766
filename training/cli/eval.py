"""`sttr eval CKPT --data DIR --split test`: top-1/top-5, per-class accuracy, confusion matrix, scores.

Writes into --out (default: next to the checkpoint, `eval_<split>/`): `<split>_scores.pkl` (sample name -> logits,
the reference's format), `<split>_confusion.csv` / `.png`, `<split>_metrics.json`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive frame count, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr eval", description=__doc__.split("\n\n")[0],
                                epilog="An exported bundle folder instead of CKPT is evaluated with ONNX Runtime, per "
                                "precision: sttr eval BUNDLE --data DIR --precision fp32 int8 "
                                "(sttr eval BUNDLE --help).")
    p.add_argument("checkpoint", nargs="?", help="an sttr checkpoint (.pt), e.g. WORK_DIR/best.pt")
    p.add_argument("--checkpoint", dest="checkpoint_option", metavar="CHECKPOINT",
                   help="the same, as an option (as scripts written for earlier versions pass it)")
    p.add_argument("--data", required=True, help="generated dataset folder ({split}_data.npy, {split}_label.pkl)")
    p.add_argument("--split", default="test", help="split name (default: test)")
    p.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/eval_SPLIT)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--window", type=_positive_int,
                   help="frames fed to the model (default: the checkpoint's training window)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--per-class", action="store_true", help="print the per-class accuracy table")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.checkpoint and args.checkpoint_option and args.checkpoint != args.checkpoint_option:
        parser.error(f"two checkpoints given: {args.checkpoint} and --checkpoint {args.checkpoint_option}")
    args.checkpoint = args.checkpoint or args.checkpoint_option
    if not args.checkpoint:
        parser.error("the checkpoint to evaluate is missing: sttr eval CKPT --data DIR")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from sttr.training.config import device_problem
    from sttr.training.evaluate import evaluate_checkpoint
    from sttr.training.feeder import SkeletonFeeder

    problem = device_problem(args.device)
    if problem:
        parser.error(problem)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / f"eval_{args.split}"
    try:
        SkeletonFeeder(args.data, args.split)  # a damaged split is named before the checkpoint is loaded
        report = evaluate_checkpoint(args.checkpoint, args.data, args.split, out_dir=out, batch_size=args.batch_size,
                                     device=args.device, window=args.window, precision=args.precision,
                                     num_workers=args.workers)
    except (FileNotFoundError, ValueError) as err:
        print(f"sttr eval: {err}", file=sys.stderr)
        return 2
    print(f"{args.split}: {report['num_samples']} samples  top-1 {100 * report['top1']:.2f}%  "
          f"top-5 {100 * report['top5']:.2f}%")
    if args.per_class:
        for name, acc in zip(report["label_names"], report["per_class"]):
            print(f"  {name:40s} {'-' if acc is None else f'{100 * acc:6.2f}%'}")
    print(f"scores: {report['scores']}\nconfusion: {report['confusion_csv']}, {report['confusion_png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
