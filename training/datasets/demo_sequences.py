"""Write held-out MSR Action3D test-subject sequences as skeleton recordings for the live demo.

`python -m sttr.training.datasets.demo_sequences --root ../shared/data/small/MSRAction3D --out realtime/demo/sequences`

Each recording is the `.npz` that `sttr-live --replay` reads (realtime/sources/replay.py): `joints` (T, 1, 20, 3)
metres, `scores` (T, 1, 20), `fps` 15 (MSR Action3D's Kinect v1 rate), `layout` "kinect20", `label` (action
name) and `name` (the sample). Only test subjects of the cross-subject protocol (even ids) are written, so
the demo model has never seen them. Written atomically.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from sttr.model.recording import save_recording

from .msr_action3d import ACTIONS, read_sequence

__all__ = ["DEMO_SAMPLES", "write_demo_sequences", "main"]

log = logging.getLogger(__name__)

MSR_FPS = 15.0
# Actions a person can repeat in front of a webcam; subject 10 (a test subject), first repetition.
DEMO_SAMPLES = ("a01_s10_e01", "a02_s10_e01", "a05_s10_e01", "a10_s10_e01", "a11_s10_e01", "a12_s10_e01",
                "a13_s10_e01", "a14_s10_e01", "a16_s10_e01", "a19_s10_e01")


def write_demo_sequences(root: str | Path, out: str | Path, samples: Sequence[str] = DEMO_SAMPLES) -> list[Path]:
    """Write one recording per sample name; refuses training subjects (odd ids)."""
    root, out = Path(root), Path(out)
    folder = root / "real_world_coordinates" if (root / "real_world_coordinates").is_dir() else root
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in samples:
        action, subject = int(name[1:3]), int(name[5:7])
        if subject % 2:
            raise ValueError(f"{name}: subject {subject} is a training subject of the cross-subject protocol; the "
                             "demo replays held-out (even) subjects only")
        joints = read_sequence(folder / f"{name}_skeleton3D.txt")  # (T, 1, 20, 3), all-zero frames dropped
        written.append(save_recording(out / f"{name}.npz", joints, None, MSR_FPS, "kinect20", ACTIONS[action - 1],
                                      name))
        log.info("%s: %s, %d frames", name, ACTIONS[action - 1], joints.shape[0])
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sttr.training.datasets.demo_sequences",
                                description="write held-out MSR Action3D sequences as sttr-live recordings")
    p.add_argument("--root", required=True, help="the MSRAction3D folder (holding real_world_coordinates/)")
    p.add_argument("--out", required=True, help="output folder for the .npz recordings")
    p.add_argument("--samples", nargs="+", default=list(DEMO_SAMPLES), help="sample names aAA_sSS_eEE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = write_demo_sequences(args.root, args.out, args.samples)
    except (OSError, ValueError) as err:
        print(f"demo_sequences: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} recordings to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
