"""`sttr convert REF.pt --out OURS.pt`: a reference ST-TR checkpoint -> an sttr checkpoint.

The variant is inferred from the keys; what they cannot tell (heads, dropout, the agcn fixed graph, the layout
of a graph other than NTU-25 / OpenPose-18) is set with `--set KEY=VALUE` (STTRConfig fields).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

from sttr.model.config_values import load_yaml

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path, help="reference checkpoint: *.pt, epochN_model.pt or epochN.ckpt")
    p.add_argument("--out", type=Path, required=True,
                   help="where to write the sttr checkpoint (.pt); never the reference checkpoint itself")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--labels", type=Path, help="text file with one class name per line")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="STTRConfig field the keys cannot tell, e.g. num_heads=8, dropout=0, agcn_graph=skeleton, "
                        "layout=kinect20 (repeatable; values are parsed as YAML)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="extra metadata to store")
    p.add_argument("--trust-pickle", action="store_true",
                   help="load the file with torch.load(weights_only=False): only for a file from a source you trust, "
                        "when the safe load refuses an object it holds besides the weights (the error names it)")
    return p


def _pairs(items: list[str], what: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"sttr convert: {what} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = load_yaml(value)
        except yaml.YAMLError:
            raise SystemExit(f"sttr convert: {what} {item!r}: the value is not a YAML scalar, list or "
                             "mapping") from None
    return out


def _out_problem(reference: Path, out: Path, overwrite: bool) -> str | None:
    """Why `out` must not be written: it is the input, a folder, or an existing file without --overwrite."""
    same = out.exists() and reference.exists() and os.path.samefile(out, reference)
    if same or out.resolve() == reference.resolve():
        return f"--out {out} is the reference checkpoint being converted; choose another file"
    if out.is_dir():
        return f"--out {out} is a folder; expected the checkpoint file to write (.pt)"
    if out.exists() and not overwrite:
        return f"--out {out} already exists (pass --overwrite to replace it)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ..checkpoint import save_checkpoint  # torch is imported only when the command runs
    from ..convert import load_reference_checkpoint, read_reference_file

    from ..bundle import not_a_checkpoint

    folder = not_a_checkpoint(args.reference, "reference checkpoint")
    problem = folder or _out_problem(args.reference, args.out, args.overwrite)
    if problem:
        print(f"sttr convert: {problem}", file=sys.stderr)
        return 2
    overrides = _pairs(args.overrides, "--set")
    labels = []
    if args.labels:
        if not args.labels.is_file():
            print(f"sttr convert: labels file {args.labels} does not exist", file=sys.stderr)
            return 2
        labels = [line.strip() for line in args.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        source = read_reference_file(args.reference, trust=args.trust_pickle)
        model = load_reference_checkpoint(source, **overrides)  # --set values are type-checked here
        meta = {"source": str(args.reference), "converted_from": "Chiaraplizz/ST-TR", **_pairs(args.meta, "--meta")}
        save_checkpoint(args.out, model, labels=labels, meta=meta)
    except (ValueError, FileNotFoundError) as err:
        where = "" if str(args.reference) in str(err) else f"{args.reference}: "
        print(f"sttr convert: {where}{err}", file=sys.stderr)
        return 1
    cfg = model.config
    print(f"wrote {args.out}: attention={cfg.attention} graph_conv={cfg.graph_conv} C={cfg.in_channels} "
          f"V={cfg.num_joints} classes={cfg.num_classes} params={sum(p.numel() for p in model.parameters()):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
