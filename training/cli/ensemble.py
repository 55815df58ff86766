"""`sttr ensemble SCORES... --weights w1 w2 ... --labels LABEL.pkl`: fuse score files by sample name.

Typical: S-TR + T-TR (`--weights 1 1`, the paper's ST-TR), or four streams (S-TR/T-TR x joints/bones).
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr ensemble", description=__doc__.split("\n\n")[0])
    p.add_argument("scores", nargs="+", help="score files (pickle: sample name -> logits)")
    p.add_argument("--weights", nargs="+", type=float, help="one weight per score file (default: all 1)")
    p.add_argument("--labels", required=True, help="label pickle (names, labels), e.g. DATA/test_label.pkl")
    p.add_argument("--normalize", default="none", choices=("none", "softmax"),
                   help="fuse raw logits (the reference) or per-stream softmax probabilities")
    p.add_argument("--out", help="write the fused scores to this pickle")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sttr.training.ensemble import ensemble_metrics, fuse_scores, labels_by_name
    from sttr.training.evaluate import load_scores, save_scores
    from sttr.training.feeder import read_labels

    try:
        scores = [load_scores(p) for p in args.scores]
        fused = fuse_scores(scores, args.weights, normalize=args.normalize, sources=args.scores)
        metrics = ensemble_metrics(fused, labels_by_name(*read_labels(args.labels)))
    except (FileNotFoundError, ValueError) as err:
        print(f"sttr ensemble: {err}", file=sys.stderr)
        return 2
    if args.out:
        names = list(fused)
        save_scores(args.out, names, [fused[n] for n in names])
    if args.json:
        print(json.dumps({k: metrics[k] for k in ("num_samples", "top1", "top5")}))
    else:
        weights = args.weights or [1.0] * len(args.scores)
        for path, w in zip(args.scores, weights):
            print(f"  {w:g} x {path}")
        print(f"fused {metrics['num_samples']} samples: top-1 {100 * metrics['top1']:.2f}%  "
              f"top-5 {100 * metrics['top5']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
