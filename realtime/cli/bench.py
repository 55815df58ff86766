"""``sttr bench live``: measure the live pipeline on a video (per-stage and end-to-end latency, fps, drops)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sttr.model.bundle import BundleError

from ..sources.capture import DEFAULT_BACKLOG
from ..sources.mediapipe_pose import DEFAULT_POSE_WIDTH
from .errors import cli_error
from .output_path import check_output_path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr bench", description="Benchmarks of the live path.")
    sub = p.add_subparsers(dest="what", required=True, metavar="{live}")
    live = sub.add_parser("live", help="the whole live pipeline on a video, per backend",
                          description="Run source -> pose -> buffer -> engine -> publisher -> subscriber on a video, "
                                      "at the video's rate (realtime) and as fast as possible (fast); print "
                                      "per-stage p50/p95/p99, end-to-end latency, sustained fps and drops.")
    live.add_argument("--video", required=True, metavar="FILE", help="video file")
    live.add_argument("--bundle", metavar="DIR", help="model bundle (default: the bundled demo model)")
    live.add_argument("--backends", nargs="+", default=["onnxruntime"],
                      choices=("onnxruntime", "torch", "tensorrt"), help="engines to compare (default onnxruntime)")
    live.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    live.add_argument("--stride", type=int, default=8, help="frames between windows (default 8)")
    live.add_argument("--window", type=int, default=None, metavar="T", help="frames per window (default: model T)")
    live.add_argument("--modes", nargs="+", default=["realtime", "fast"], choices=("realtime", "fast"))
    live.add_argument("--pose", default="both", choices=("mediapipe", "cached", "both"),
                      help="estimate pose live, replay skeletons extracted once (cached), or both (default)")
    live.add_argument("--pose-model", metavar="FILE", help="MediaPipe pose_landmarker .task file")
    live.add_argument("--pose-width", type=int, default=DEFAULT_POSE_WIDTH, metavar="PX",
                      help="scale wider frames down to PX before pose estimation (default 0: full size)")
    live.add_argument("--pose-workers", type=int, default=None, metavar="N",
                      help="pose landmarkers sharing the frames (default: 2 with 2+ cores, else 1)")
    live.add_argument("--capture-backlog", type=int, default=DEFAULT_BACKLOG, metavar="N",
                      help=f"video frames kept unread while pose is busy before the oldest is dropped, realtime "
                           f"mode (default {DEFAULT_BACKLOG}; 1: strictly the newest frame)")
    live.add_argument("--loops", type=int, default=1, metavar="N",
                      help="play the video N times in a row per run, as one stream (more windows, steadier "
                           "percentiles from a short clip; default 1)")
    live.add_argument("--max-frames", type=int, default=None, metavar="N", help="frames per run (default: all)")
    live.add_argument("--threads", type=int, default=1, metavar="N",
                      help="engine CPU threads (default 1: the pose estimator needs the other cores; 0 = all)")
    live.add_argument("--out", metavar="FILE.json", help="write the report as JSON")
    live.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..live_bench import BenchInterrupted, format_results, run_live_bench
    from .shutdown import stop_signals

    def interrupt(signum: int) -> None:  # also when started in the background, where Python ignores Ctrl-C
        raise KeyboardInterrupt

    try:
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            from ..default_model import default_bundle_dir

            bundle = default_bundle_dir()
        if not Path(args.video).is_file():
            raise FileNotFoundError(f"video {args.video} does not exist")
        check_output_path(args.out, "--out")
        for flag, value, least in (("--stride", args.stride, 1), ("--window", args.window, 1),
                                   ("--max-frames", args.max_frames, 1), ("--threads", args.threads, 0),
                                   ("--loops", args.loops, 1)):
            if value is not None and value < least:  # 0 or below meant something else silently
                raise ValueError(f"{flag} must be >= {least}, got {value}")
        with stop_signals(interrupt):
            report = run_live_bench(args.video, bundle, backends=args.backends, precision=args.precision,
                                    stride=args.stride, window=args.window, modes=args.modes, pose=args.pose,
                                    pose_model=args.pose_model, max_frames=args.max_frames,
                                    threads=args.threads or None, pose_width=args.pose_width,
                                    pose_workers=args.pose_workers, loops=args.loops,
                                    capture_backlog=args.capture_backlog)
    except BenchInterrupted as exc:
        return _interrupted(exc.report, args.out)
    except KeyboardInterrupt:  # before the first run started
        print("sttr bench live: interrupted before any run finished; nothing measured", file=sys.stderr)
        return 130
    except (OSError, ImportError, ValueError, RuntimeError, BundleError) as exc:
        return cli_error("sttr bench live", exc)
    print(format_results(report))
    return _write_report(report, args.out)


def _write_report(report: dict, out: str | None) -> int:
    """Write the report to --out (checked at start-up; a failure now is one line after the printed tables)."""
    from .output_path import write_output_json

    if not out:
        return 0
    status = write_output_json(out, report, "--out", "sttr bench live")
    if status == 0:
        print(f"wrote {out}")
    return status


def _interrupted(report: dict, out: str | None) -> int:
    """Ctrl-C: print (and write to --out) the runs that finished; exit status 130."""
    from ..live_bench import format_results

    runs = len(report["results"])
    if runs:
        print(format_results(report))
        _write_report({**report, "interrupted": True}, out)
    print(f"sttr bench live: interrupted; {runs} finished run(s) " + ("shown above" if runs else "(nothing measured)"),
          file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
