"""`sttr VERB ...`: one command line tool for every part.

The verb table maps each verb to the module that implements it, resolved only when that verb
runs, so `sttr sub` never imports torch and `sttr train` never imports ZeroMQ. This file is the
composition root: it names modules of every part as strings but imports none of them itself.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

# verb -> (module with `main(argv) -> int`, one-line help, extra to install when its imports fail)
VERBS: dict[str, tuple[str, str, str]] = {
    "convert": ("sttr.model.cli.convert", "convert a reference ST-TR checkpoint into an sttr checkpoint", "torch"),
    "attention": ("sttr.model.cli.attention", "render spatial-attention heatmaps of a checkpoint on a sample", "train"),
    "gendata": ("sttr.training.cli.gendata", "make a training set: NTU 60/120, Kinetics, MSR/Florence/NATOPS, your own",
                "train"),
    "train": ("sttr.training.cli.train", "train a model from a YAML config (resumable, multi-GPU with torchrun)",
              "train"),
    "eval": ("sttr.training.cli.eval", "accuracy of a checkpoint, or of a bundle per precision (top-1/5, confusion)",
             "train"),
    "ensemble": ("sttr.training.cli.ensemble", "fuse score files of several streams (S-TR + T-TR, joints + bones)",
                 "train"),
    "export": ("sttr.calibration.cli.export", "export a checkpoint to an ONNX bundle checked against PyTorch",
               "export"),
    "calibrate": ("sttr.calibration.cli.calibrate", "INT8/FP16 and confidence calibration of a bundle on real data",
                  "export"),
    "bench": ("sttr.realtime.cli.bench", "latency benchmarks of the live pipeline (sttr bench live --video FILE)",
              "live"),
    "serve": ("sttr.realtime.cli.serve", "one inference service for many skeleton streams, windows batched per "
              "engine call", "live"),
    "sub": ("sttr.realtime.cli.sub", "print the predictions published by sttr-live", "live"),
}


# verbs whose argument may instead be an exported bundle folder: evaluated with the bundle's ONNX files
BUNDLE_VERBS: dict[str, tuple[str, str]] = {"eval": ("sttr.calibration.cli.eval_bundle", "export")}


def _names_a_bundle(args: list[str]) -> bool:
    """True when an argument is a folder with a bundle.json (a generated dataset or an output folder has none)."""
    return any((Path(arg) / "bundle.json").is_file() for arg in args if not arg.startswith("-"))


def _usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: sttr VERB [options]    (sttr VERB --help for the options of a verb)", "",
             "Real-time skeleton action recognition with ST-TR.", "", "verbs:"]
    lines += [f"  {verb.ljust(width)}  {helptext}" for verb, (_, helptext, _) in VERBS.items()]
    lines += ["", "The live recognizer itself is `sttr-live` (sttr-live --help)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"sttr: unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, extra = VERBS[verb]
    if verb in BUNDLE_VERBS and _names_a_bundle(rest):
        module_name, extra = BUNDLE_VERBS[verb]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        if err.name and err.name.startswith("sttr."):
            raise
        print(f"sttr {verb}: missing dependency {err.name!r}; install it with: pip install 'sttr[{extra}]'",
              file=sys.stderr)
        return 1
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
