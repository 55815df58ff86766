"""`sttr gendata`: build a training set from NTU RGB+D 60/120, Kinetics-skeleton, the small complete datasets
(MSR Action3D, Florence 3D, NATOPS) or a folder of your own samples.

    sttr gendata ntu60 --raw nturgb+d_skeletons --out data/ntu60 --benchmark xsub
    sttr gendata ntu120 --raw nturgb+d_skeletons nturgbd_skeletons_s018_to_s032 --out data/ntu120 --benchmark xset
    sttr gendata kinetics --raw kinetics-skeleton/kinetics_val --labels kinetics-skeleton/kinetics_val_label.json \\
        --out data/kinetics
    sttr gendata msr_action3d --root MSRAction3D --out data/msr --window 32 --bones   (also florence3d, natops,
        custom: the small complete datasets and your own folders; `sttr gendata custom --help`)

Writes `{out}/{benchmark}/{train,test}_data.npy` (float32 N, C, T, V, M), `_label.pkl` and `_meta.json`; a rerun
continues an interrupted run and keeps finished splits. Unreadable files are skipped and listed. With a complete
NTU dataset the split sizes are checked against the reported ones; a mismatch is printed and the exit status is 1.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _common(p: argparse.ArgumentParser, pre_norm: str, padding: str) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder; files go to OUT/BENCHMARK/")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--pre-normalization", choices=("fixed", "legacy", "none"), default=pre_norm,
                   help=f"spec 4.4 pre-normalisation: quirks fixed, the reference exactly, or none "
                        f"(default {pre_norm})")
    p.add_argument("--padding", choices=("loop", "zero"), default=padding,
                   help=f"fill the frames after a clip's end by repeating it, or with zeros (default {padding})")
    p.add_argument("--bones", choices=("none", "only", "merge"), default="none",
                   help="joints only, bone vectors only, or joints+bones merged along C (default none)")
    p.add_argument("--legacy-bones", action="store_true",
                   help="bones of 2-D layouts difference the score channel too, as the reference's Kinetics bones "
                        "(spec 9.20; default: the bone's score is the mean of its two joints')")
    p.add_argument("--window", type=int, default=300, help="frames per sample, T (default 300)")
    p.add_argument("--label-names", type=Path, help="class-name file (one per line, or the NTU README's 'A1. ...')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _count(text: str) -> int:
    """A whole number >= 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (0 = all), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sttr gendata", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dataset", required=True,
                                metavar="{ntu60,ntu120,kinetics,msr_action3d,florence3d,natops,custom}")
    for name, benchmarks, raw_help in (
            ("ntu60", ("xsub", "xview"), "folder(s) holding the NTU-60 .skeleton files (searched recursively)"),
            ("ntu120", ("xsub", "xset"), "the S001-S017 and S018-S032 .skeleton folders (searched recursively)")):
        p = sub.add_parser(name, help=f"NTU RGB+D {name[3:]} from .skeleton files")
        p.add_argument("--raw", type=Path, nargs="+", required=True, help=raw_help)
        p.add_argument("--benchmark", choices=benchmarks, nargs="+", required=True, help="benchmark(s) to write")
        p.add_argument("--missing", type=Path, help="missing-skeleton list (default: the official NTU-120 list, "
                                                    "which contains the NTU-60 one)")
        p.add_argument("--no-missing-list", action="store_true", help="keep the missing-skeleton samples")
        p.add_argument("--max-bodies", type=_count, default=4,
                       help="body slots per frame considered by the motion-energy selection (reference: 4; 0 = all)")
        _common(p, "fixed", "loop")
    p = sub.add_parser("kinetics", help="Kinetics-skeleton per-video JSON")
    p.add_argument("--raw", type=Path, required=True, help="folder of per-video JSON (e.g. kinetics_val/)")
    p.add_argument("--labels", type=Path, required=True, help="its label file (e.g. kinetics_val_label.json)")
    p.add_argument("--split", choices=("train", "test"), help="split name (default: from the label file's name)")
    p.add_argument("--person-order", choices=("score", "track"), default="score",
                   help="score: per frame by summed score, as the reference (identities may swap); track: link "
                        "people across frames and keep the 2 tracks with the largest total score (default score)")
    _common(p, "none", "zero")
    return parser


def _print_summary(summaries: dict, label_names: list[str], extra: list[str]) -> None:
    for split, s in summaries.items():
        state = "unchanged (already complete)" if s.reused else "written"
        print(f"\n{split}: {s.num_samples} samples, {state} -> {s.path}/{split}_data.npy")
        cells = [f"{k:>3} {label_names[k][:28] if k < len(label_names) else '?':<28} {n:>6}"
                 for k, n in sorted(s.per_class.items())]
        for start in range(0, len(cells), 3):
            print("  " + "  ".join(cells[start: start + 3]))
        if s.truncated:
            print(f"  {s.truncated} samples longer than the window were cut")
        if s.excluded:
            print(f"  {len(s.excluded)} samples left out before reading (e.g. {s.excluded[0]['reason']})")
        if s.skipped:
            print(f"  {len(s.skipped)} files SKIPPED (unreadable):")
            for item in s.skipped:
                print(f"    {item['path']}: {item['reason']}")
    for line in extra:
        print(line)


def _spec(args: argparse.Namespace, layout: str):
    from sttr.model.preprocess import PreprocessSpec

    if args.legacy_bones and args.bones == "none":
        raise ValueError("--legacy-bones goes with --bones only or --bones merge")
    return PreprocessSpec(layout=layout, pre_normalization=args.pre_normalization, padding=args.padding,
                          bones=args.bones, legacy_bones=args.legacy_bones, window=args.window, fps=30.0, persons=2)


def _run_ntu(args: argparse.Namespace) -> int:
    from ..gendata.ntu import generate_ntu
    from ..labels import NTU120_MISSING_LIST, load_label_names

    names = load_label_names(args.label_names or args.dataset)
    missing = None if args.no_missing_list else (args.missing or NTU120_MISSING_LIST)
    status, done = 0, []
    for benchmark in args.benchmark:
        summaries, plan, warnings = generate_ntu(
            args.raw, args.out, args.dataset, benchmark, _spec(args, "ntu25"), missing_list=missing,
            label_names=names, workers=args.workers, max_slots=args.max_bodies or None,
            progress=not args.no_progress, reuse_from=done)
        done.append(args.out / benchmark)  # the next benchmark copies these samples instead of re-reading
        extra = [f"{len(plan.ignored)} files ignored (not {args.dataset} sample names or duplicates)"] \
            if plan.ignored else []
        extra += [f"WARNING: {w}" for w in warnings]
        print(f"\n== {args.dataset} {benchmark}: {plan.num_files} sample files found, "
              f"{len(plan.excluded)} in the missing-skeleton list")
        _print_summary(summaries, names, extra)
        status = status or (1 if warnings else 0)
    return status


def _run_kinetics(args: argparse.Namespace) -> int:
    from ..gendata.kinetics import generate_kinetics
    from ..labels import load_label_names
    from ..readers.kinetics import read_kinetics_labels

    if args.labels.is_dir():  # named before the split is guessed from its name, which a folder's may not tell
        read_kinetics_labels(args.labels)  # raises, naming the folder and the label files in it
    names = load_label_names(args.label_names or "kinetics400")
    summary = generate_kinetics(args.raw, args.labels, args.out, _spec(args, "openpose18"), split=args.split,
                                label_names=names, person_order=args.person_order, workers=args.workers,
                                progress=not args.no_progress)
    print(f"\n== kinetics from {args.raw}")
    _print_summary({summary.split: summary}, names, [])
    return 0


# Small complete datasets and custom folders have their own generator (training/datasets).
SMALL_DATASETS = ("msr_action3d", "florence3d", "natops", "custom")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    small = bool(argv) and argv[0] in SMALL_DATASETS
    try:
        return _main(argv, small)
    except KeyboardInterrupt:
        # NTU and Kinetics runs keep finished samples and splits; the small datasets take seconds to redo
        why = "to generate it again" if small else "to continue (finished samples and splits are kept)"
        print(f"\nsttr gendata: interrupted; {why}, rerun the same command: {shlex.join(['sttr', 'gendata', *argv])}",
              file=sys.stderr)
        return 130


def _main(argv: list[str], small: bool) -> int:
    if small:
        from ..datasets.__main__ import main as small_main

        return small_main(argv, prog="sttr gendata")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run_kinetics(args) if args.dataset == "kinetics" else _run_ntu(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"sttr gendata: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
