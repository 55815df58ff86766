"""``sttr-live ... --publish-skeletons ADDR``: the pose process of the two-process set-up.

Runs only the source (camera, video, OpenPose folder, recording) and publishes each frame's skeleton as
``sttr.skeleton/1`` on ADDR, topic ``skel.<stream>``, for ``sttr serve --skeleton-sub ADDR``. Ctrl-C or SIGTERM stops
cleanly and prints what was sent.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from sttr.model.bundle import BundleError

from ..messages import MessageError, check_stream_id
from .errors import cli_error
from .shutdown import close_all, run_until_stopped

__all__ = ["run_pose_publisher"]


_NOT_WITH = (("show", "--show"), ("record", "--record"), ("demo", "--demo"), ("skeleton_sub", "--skeleton-sub"),
             ("no_pub", "--no-pub"), ("latency_json", "--latency-json"))
_LIVE_KINDS = ("camera", "url")  # a live feed starts at once; a file waits for its subscriber


def _error(problem: str | BaseException) -> int:
    return cli_error("sttr-live", problem)


def _model_layout(args: argparse.Namespace, kind: str) -> str:
    """The layout the served model expects: it decides MediaPipe's coordinates (world 3D or image 2D)."""
    if kind not in ("camera", "video", "url"):
        return "openpose18"  # OpenPose folders and recordings deliver what they hold; the layout is not used
    from sttr.model.bundle import read_bundle

    if args.bundle:
        return read_bundle(args.bundle).input.layout
    if args.checkpoint:
        from ..checkpoint_bundle import bundle_for_checkpoint

        return read_bundle(bundle_for_checkpoint(args.checkpoint, weights=args.weights)).input.layout
    from ..default_model import default_bundle_dir

    layout = read_bundle(default_bundle_dir()).input.layout
    print(f"sttr-live: no --bundle or --checkpoint given: publishing the coordinates the bundled demo model needs "
          f"({layout}); give the bundle `sttr serve` runs to be sure", file=sys.stderr)
    return layout


def _open(args: argparse.Namespace, choice: tuple[str, Any]) -> tuple[Any, Any]:
    """(publisher, source); the publisher first: a taken port is the cheapest thing to find out."""
    from ..publisher import Publisher
    from ..session import open_live_source
    from .live import source_options

    kind, target = choice
    publisher = Publisher(args.publish_skeletons, fmt=args.format, option="--publish-skeletons")
    try:
        source = open_live_source(kind, target, _model_layout(args, kind), realtime=args.realtime,
                                  pose_model=args.pose_model, **source_options(args, kind))
    except BaseException:
        publisher.close()
        raise
    return publisher, source


def run_pose_publisher(args: argparse.Namespace, choice: tuple[str, Any]) -> int:
    """Publish the chosen source's skeletons until it ends, ``--max-frames`` or a signal; returns the exit code."""
    from ..skeleton_publisher import SkeletonPublisher

    for attr, flag in _NOT_WITH:
        if getattr(args, attr):
            return _error(f"{flag} does not go with --publish-skeletons (a pose process runs no model)")
    try:
        check_stream_id(args.stream)  # before a camera or a port is taken
    except MessageError as exc:
        return _error(f"--stream: {exc}")
    kind = choice[0]
    wait_s = args.wait_subscriber if args.wait_subscriber is not None else (0.0 if kind in _LIVE_KINDS else 10.0)
    try:
        publisher, source = _open(args, choice)
    except KeyboardInterrupt:
        return 130
    except (OSError, ImportError, ValueError, RuntimeError, BundleError) as exc:
        return _error(exc)
    runner = SkeletonPublisher(source, publisher, args.stream, max_frames=args.max_frames)

    def run() -> Any:
        if wait_s > 0 and not publisher.wait_for_subscriber(wait_s):
            print(f"sttr-live: no subscriber on {publisher.addr} after {wait_s:g} s; publishing anyway",
                  file=sys.stderr)
        if not args.quiet:
            print(f"sttr-live: publishing skel.{args.stream} on {publisher.addr}", file=sys.stderr)
        return runner.run()

    stats = run_until_stopped(run, lambda: runner, publisher, lambda: close_all((source, publisher)))
    print(f"frames {stats.frames} in {stats.wall_s:.1f} s ({stats.input_fps:.1f} fps), sent {stats.sent}, "
          f"dropped {stats.dropped}, errors {stats.errors}", file=sys.stderr)
    return 0
