"""`python -m sttr.training.datasets NAME --root RAW --out OUT [...]`: generate a small or custom dataset.

    python -m sttr.training.datasets msr_action3d --root ../shared/data/small/MSRAction3D --out data/msr --window 32
    python -m sttr.training.datasets florence3d --root ../shared/data/small/Florence3D --out data/florence --window 20
    python -m sttr.training.datasets natops --root ../shared/data/small/NATOPS --out data/natops --window 32
    python -m sttr.training.datasets custom --root my_clips --out data/mine --layout kinect20 --test-subjects 1 2
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None, prog: str = "python -m sttr.training.datasets") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Generate a small or custom dataset (train/test splits as "
                                "memory-mappable .npy + label .pkl + meta .json).",
                                usage=f"{prog} {{msr_action3d,florence3d,natops,custom}} --root ROOT --out OUT "
                                      "[options]")
    p.add_argument("name", choices=("msr_action3d", "florence3d", "natops", "custom"))
    p.add_argument("--root", required=True, help="the raw dataset folder")
    p.add_argument("--out", required=True,
                   help="output folder: one sub-folder per protocol (OUT/cs, OUT/as1, ...); custom datasets write "
                        "their split files into OUT itself")
    p.add_argument("--window", type=int, default=32, help="frames per sample after resampling")
    p.add_argument("--bones", action="store_true", help="write joints + bones (6 channels)")
    p.add_argument("--protocols", nargs="+", help="protocols to write (default: all of the dataset)")
    p.add_argument("--layout", help="custom: layout name or YAML/JSON file (samples.csv + one .npy per sample in "
                   "--root; format in training/datasets/custom.py)")
    p.add_argument("--train-subjects", nargs="+", type=int, default=[])
    p.add_argument("--test-subjects", nargs="+", type=int, default=[])
    p.add_argument("--train-cameras", nargs="+", type=int, default=[])
    p.add_argument("--test-cameras", nargs="+", type=int, default=[])
    p.add_argument("--train-list", help="custom: fold file of training samples")
    p.add_argument("--test-list", help="custom: fold file of test samples")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from . import generate_custom, generate_florence3d, generate_msr_action3d, generate_natops
    from sttr.model.skeleton import get_layout

    from .custom import CustomProtocol

    try:
        if args.name == "msr_action3d":
            kw = {"protocols": args.protocols} if args.protocols else {}
            folders = generate_msr_action3d(args.root, args.out, window=args.window, bones=args.bones, **kw)
        elif args.name == "florence3d":
            folders = generate_florence3d(args.root, args.out, window=args.window, bones=args.bones,
                                          which=args.protocols)
        elif args.name == "natops":
            folders = generate_natops(args.root, args.out, window=args.window, bones=args.bones)
        else:
            if not args.layout:
                p.error("custom datasets need --layout")
            try:
                get_layout(args.layout)
            except KeyError as err:  # names the known layouts
                p.error(f"--layout: {err.args[0]}")
            protocol = CustomProtocol(args.train_subjects, args.test_subjects, args.train_cameras, args.test_cameras,
                                      args.train_list, args.test_list)
            folders = {"custom": generate_custom(args.root, args.out, args.layout, protocol, window=args.window,
                                                 bones=args.bones)}
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
