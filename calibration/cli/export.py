"""`sttr export CKPT [CKPT ...] --out BUNDLE`: ONNX bundle of a checkpoint (or of several fused), checked against
PyTorch."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from ..bundle_writer import ExportOptions, ParityError, export_bundle
from ..fused_source import load_fused_source

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sttr export", description="Export an sttr (or reference ST-TR) checkpoint to a bundle folder: "
        "model.onnx + bundle.json (input spec, labels, sha256 of every file), checked against PyTorch. Several "
        "checkpoints are fused into one graph that sums their weighted logits (S-TR + T-TR, joints + bones); streams "
        "trained on joints and on bones then share one joints window, their bones computed inside the graph.",
        epilog="examples: sttr export runs/ntu60/best.pt --out bundles/ntu60 --window 64 "
               "--data ../shared/data/ntu60 --fp16;  sttr export runs/s-tr/best.pt runs/t-tr/best.pt "
               "--weights 1 1 --out bundles/st-tr")
    p.add_argument("checkpoint", nargs="+",
                   help="sttr checkpoint (.pt) or a reference ST-TR checkpoint; two or more: a fused bundle")
    p.add_argument("--weights", type=float, nargs="+", default=None,
                   help="fusion: one weight per checkpoint (default 1 each)")
    p.add_argument("--out", required=True, help="bundle folder to create")
    p.add_argument("--window", type=int, default=None, help="T, frames per window (default: the checkpoint's)")
    p.add_argument("--persons", type=int, default=None, help="M, person slots (must match the model)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    p.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                   help="torch.onnx exporter: dynamo=True, dynamo=False, or dynamo then legacy (default)")
    p.add_argument("--dynamic-time", action="store_true",
                   help="leave T dynamic in the graph: any T for S-TR; with temporal attention (T-TR, both) the T "
                        "fed must still suit the network, e.g. divisible by 4 with an odd number of joints")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx (float32 input/output)")
    p.add_argument("--data", default=None,
                   help="real windows for the parity check: NTU .skeleton folder, generated split folder or .npy "
                        "folder (default: synthetic windows)")
    p.add_argument("--samples", type=int, default=64, help="at most this many parity windows (default 64)")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="do not store model.pt (stream<i>.pt when fused): no torch engine")
    p.add_argument("--no-single-person", action="store_true",
                   help="do not write model.p1.onnx (the faster graph for windows with only person slot 0 present)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle folder (one holding bundle.json; never another folder); "
                        "files you added to it (a model card, notes) are kept")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.weights is not None and len(args.checkpoint) == 1:
        parser.error("--weights is for fusing two or more checkpoints")
    if args.weights is not None and len(args.weights) != len(args.checkpoint):
        parser.error(f"--weights: expected one weight per checkpoint ({len(args.checkpoint)}), got "
                     f"{len(args.weights)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from sttr.model.bundle import not_a_checkpoint

    for path in args.checkpoint:
        if folder := not_a_checkpoint(path):
            print(f"sttr export: {folder}", file=sys.stderr)
            return 1
    try:
        opts = ExportOptions(window=args.window, persons=args.persons, opset=args.opset, exporter=args.exporter,
                             dynamic_time=args.dynamic_time, fp16=args.fp16, data=args.data, samples=args.samples,
                             include_checkpoint=not args.no_checkpoint, overwrite=args.overwrite,
                             single_person=not args.no_single_person)
        if len(args.checkpoint) == 1:
            bundle = export_bundle(args.checkpoint[0], args.out, opts)
        else:
            source = load_fused_source(args.checkpoint, args.weights)
            bundle = export_bundle(None, args.out, opts, source=source)
    except (ParityError, FileExistsError, FileNotFoundError, ValueError, RuntimeError) as err:
        # RuntimeError: every ONNX exporter tried failed (export_onnx names each one's error)
        print(f"sttr export: {err}", file=sys.stderr)
        return 1
    parity = bundle["export"]["parity"]
    print(f"wrote {args.out}: {', '.join(sorted(bundle['files']))}")
    print(f"exporter {bundle['export']['exporter']} (opset {bundle['export']['opset']}); parity on "
          f"{parity['n']} windows ({parity['data']}): max |logit diff| {parity['max_abs_logit_diff']:.3g}, "
          f"top-1 agreement {parity['top1_agreement']:.4f}"
          + (f" (within twice PyTorch's own float32 error, {parity['float32_noise']:.3g}: ill-conditioned logits, "
             f"max |logit| {parity['max_abs_logit']:.3g})" if "float32_noise" in parity else ""))
    if "fp16" in bundle["calibration"]:
        print("fp16: " + json.dumps(bundle["calibration"]["fp16"]["agreement"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
