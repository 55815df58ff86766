"""`sttr calibrate BUNDLE --data SOURCE`: INT8 (Q/DQ), FP16 and temperature calibration of a bundle."""
from __future__ import annotations

import argparse
import logging
import sys

from sttr.model.bundle import BundleError

from ..calibrate_bundle import AgreementFloorError, CalibrateOptions, calibrate_bundle
from ..int8 import METHODS

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sttr calibrate", description="Calibrate a bundle on real skeleton windows: model.int8.onnx (explicit "
        "Q/DQ, per-channel weights), optionally model.fp16.onnx, and the softmax temperature. Agreement with FP32 "
        "is measured on clips held out from calibration and recorded in bundle.json.",
        epilog="example: sttr calibrate bundles/ntu60 --data data/ntu60/xsub --samples 512 --min-agreement 0.99")
    p.add_argument("bundle", help="bundle folder made by `sttr export`")
    p.add_argument("--data", required=True,
                   help="NTU .skeleton folder, generated split folder ({split}_data.npy) or folder of .npy windows")
    p.add_argument("--samples", type=int, default=256, help="calibration windows (default 256)")
    p.add_argument("--method", choices=METHODS, default="minmax", help="activation range method (default minmax)")
    p.add_argument("--min-agreement", type=float, default=0.0,
                   help="fail (and leave the bundle unchanged) below this top-1 agreement with FP32, e.g. 0.99")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx")
    p.add_argument("--no-int8", action="store_true", help="skip INT8 (e.g. with --fp16 for FP16 only)")
    p.add_argument("--no-temperature", action="store_true", help="keep the bundle's temperature")
    p.add_argument("--holdout", type=float, default=0.5, help="fraction of clips held out (default 0.5)")
    p.add_argument("--asymmetric", action="store_true",
                   help="uint8 asymmetric activations (ONNX Runtime only; TensorRT needs symmetric)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _summary(bundle: dict, fitted_temperature: bool = True) -> list[str]:
    cal = bundle["calibration"]
    lines = []
    for key in ("int8", "fp16"):
        if key in cal and "held_out" in cal[key]:
            h = cal[key]["held_out"]
            acc = f", accuracy change {h['accuracy_change']:+.4f}" if "accuracy_change" in h else ""
            r = h.get("in_range")
            within = f" ({r['top1_agreement']:.4f} on the {r['n']} where FP32 answers in its range)" if r else ""
            lines.append(f"{key}: top-1 agreement {h['top1_agreement']:.4f} on {h['n']} held-out windows{within}, "
                         f"max |logit diff| {h['max_abs_logit_diff']:.3g}{acc}")
    t = cal.get("temperature", {}) if fitted_temperature else {}
    if "temperature" in t:
        limit = " (the end of the search range [0.02, 50]: scores far from calibrated - an untrained model?)" \
            if t.get("at_search_limit") else ""
        lines.append(f"temperature {t['temperature']:.3f}: ECE {t['ece_before']:.4f} -> {t['ece_after']:.4f}{limit}")
    elif "skipped" in t:
        lines.append(f"temperature not fitted: {t['skipped']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.no_int8 and not args.fp16 and args.no_temperature:
        print("sttr calibrate: nothing to do (--no-int8 and --no-temperature without --fp16)", file=sys.stderr)
        return 2
    try:
        opts = CalibrateOptions(data=args.data, samples=args.samples, method=args.method,
                                min_agreement=args.min_agreement, int8=not args.no_int8, fp16=args.fp16,
                                temperature=not args.no_temperature, holdout=args.holdout,
                                symmetric_activations=not args.asymmetric)
    except ValueError as err:
        print(f"sttr calibrate: {err}", file=sys.stderr)
        return 2
    try:
        bundle = calibrate_bundle(args.bundle, opts)
    except (AgreementFloorError, BundleError, FileNotFoundError, ValueError) as err:
        print(f"sttr calibrate: {err}", file=sys.stderr)
        return 1
    print(f"calibrated {args.bundle}: {', '.join(sorted(bundle['files']))}")
    for line in _summary(bundle, fitted_temperature=opts.temperature):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
