"""``sttr-live``: recognise actions live from a camera, a video, OpenPose output, a ZeroMQ skeleton stream or a
recording, and publish predictions over ZeroMQ.

Examples::

    sttr-live --camera 0 --bundle bundles/ntu60 --show
    sttr-live --video clip.mp4 --bundle b/ --fast --max-frames 300 --pub tcp://127.0.0.1:5556
    sttr-live --openpose-dir out/json --bundle b/ --image-size 340 256
    sttr sub tcp://127.0.0.1:5555                      # in another terminal: print the predictions
    sttr-live --camera 0 --publish-skeletons tcp://127.0.0.1:5570 --stream cam0   # pose only, for `sttr serve`

Ctrl-C or SIGTERM stops cleanly and prints a latency summary.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from sttr.model.bundle import BundleError

from ..adapters import UnsupportedAdapterError
from ..latency import format_table
from ..messages import MessageError, check_stream_id
from ..pipeline import LiveConfig, Pipeline, RunStats
from ..sources.capture import DEFAULT_BACKLOG
from ..sources.mediapipe_pose import DEFAULT_POSE_WIDTH
from .model_options import add_model_options, add_publish_options, add_window_options, bundle_dir, check_counts
from .errors import cli_error
from .output_path import check_output_path, write_output_json
from .shutdown import close_all, run_until_stopped

__all__ = ["main", "build_parser", "LiveApp"]

DEFAULT_FOLLOW_IDLE_S = 30.0  # OpenPose takes several seconds to load before its first file


_EPILOG = """examples:
  sttr-live --camera 0 --bundle bundles/ntu60 --show
  sttr-live --video clip.mp4 --bundle b/ --fast --max-frames 300 --pub tcp://127.0.0.1:5556
  sttr-live --openpose-dir out/json --bundle b/ --image-size 340 256
  sttr sub tcp://127.0.0.1:5555          (another terminal: print the predictions)
  sttr-live --camera 0 --publish-skeletons tcp://127.0.0.1:5570 --stream cam0
                                         (pose only: skel.cam0 frames for `sttr serve --skeleton-sub ...`)

Ctrl-C or SIGTERM stops cleanly and prints a latency summary (p50/p95/p99 per stage)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr-live", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Recognise actions live from a camera, a video, OpenPose output, a "
                                            "ZeroMQ skeleton stream or a recording,\nand publish predictions over "
                                            "ZeroMQ (topics pred.<stream> and status.<stream>).",
                                epilog=_EPILOG)
    src = p.add_argument_group("input (one of; default --camera 0)").add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="N", help="camera index (MediaPipe pose)")
    src.add_argument("--video", metavar="FILE", help="video file or rtsp:// / http:// URL (MediaPipe pose)")
    src.add_argument("--openpose-dir", metavar="DIR", help="folder of OpenPose --write_json files (read once; "
                                                           "--follow to watch it while OpenPose writes)")
    src.add_argument("--skeleton-sub", metavar="ADDR", help="subscribe to sttr.skeleton/1 frames at ADDR (one "
                                                            "stream: the first seen; `sttr serve` for several)")
    src.add_argument("--replay", metavar="FILE.npz", help="replay a recorded skeleton sequence")
    src.add_argument("--demo", action="store_true",
                     help="replay the bundled held-out MSR Action3D recordings with the demo model and print "
                          "truth next to prediction (received over ZeroMQ), then exit")
    add_model_options(p, 1, "engine CPU threads (default 1: the pose estimator needs the other cores; 0 = all)")
    add_window_options(p, "frames between two predictions (default 8)")
    add_publish_options(p)
    p.add_argument("--no-pub", action="store_true", help="do not publish (terminal view only)")
    p.add_argument("--stream", default="live", help="stream id in topics pred.<stream> / status.<stream> "
                                                     "(skel.<stream> with --publish-skeletons)")
    pose = p.add_argument_group("pose only (the two-process set-up: one pose process per camera, one `sttr serve`)")
    pose.add_argument("--publish-skeletons", metavar="ADDR",
                      help="run only the pose source and publish each frame's skeleton as sttr.skeleton/1 on ADDR "
                           "(topic skel.<stream>); no model runs here. --bundle/--checkpoint, when given, only "
                           "choose the coordinates a camera or video delivers (3D for NTU/Kinect layouts, 2D for "
                           "OpenPose/COCO)")
    pose.add_argument("--wait-subscriber", type=float, default=None, metavar="S",
                      help="with --publish-skeletons: wait up to S seconds for a subscriber before the first frame "
                           "(default 10 for files and recordings, so none is lost; 0 for cameras and URLs)")
    p.add_argument("--show", action="store_true", help="window with the skeleton overlay and top-k")
    p.add_argument("--record", metavar="OUT.mp4", help="write the overlay video to OUT.mp4")
    p.add_argument("--pose-model", metavar="FILE", help="MediaPipe pose_landmarker .task file")
    p.add_argument("--pose-width", type=int, default=DEFAULT_POSE_WIDTH, metavar="PX",
                   help="scale wider images down to PX before pose estimation, for large camera images (default 0: "
                        "full size; small, distant people are found less often at low widths)")
    p.add_argument("--pose-workers", type=int, default=None, metavar="N",
                   help="pose landmarkers sharing the frames, one core each (default: 2 on a machine with 2 or "
                        "more cores, else 1); one landmarker reaches ~27 fps on this project's 2-core test CPU")
    p.add_argument("--capture-backlog", type=int, default=DEFAULT_BACKLOG, metavar="N",
                   help=f"camera/video frames kept unread while the pose landmarkers are busy before the oldest is "
                        f"dropped (default {DEFAULT_BACKLOG}: a burst of slow pose frames costs a frame interval of "
                        f"delay instead of a frame; 1: strictly the newest frame)")
    p.add_argument("--follow", type=float, nargs="?", const=DEFAULT_FOLLOW_IDLE_S, default=None, metavar="IDLE_S",
                   help=f"with --openpose-dir: watch the folder for new files as OpenPose writes them (live); end "
                        f"after IDLE_S seconds without a new file (default {DEFAULT_FOLLOW_IDLE_S:g}; 0: until "
                        f"Ctrl-C); of the files already there, the newest 300 are read as recent history")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                   help="image size in pixels of 2D sources that give pixels (OpenPose)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                      help="live policy (default): files play at their own rate, newest window wins under load")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="read files as fast as possible, every frame and every window (benchmarks, offline)")
    p.add_argument("--latency-json", metavar="FILE", help="write the run's statistics and latency summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no live terminal line")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def check_pose_options(args: argparse.Namespace) -> None:
    """ValueError naming the flag when --pose-width, --pose-workers or --capture-backlog is out of range; checked
    before anything opens."""
    if args.pose_width < 0:
        raise ValueError(f"--pose-width must be a number of pixels >= 0 (0: full size), got {args.pose_width}")
    if args.pose_workers is not None and args.pose_workers < 1:
        raise ValueError(f"--pose-workers must be >= 1, got {args.pose_workers}")
    if args.capture_backlog < 1:
        raise ValueError(f"--capture-backlog must be >= 1 frame, got {args.capture_backlog}")


def source_options(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """Options of the chosen source that its flags set (--image-size for OpenPose, --pose-width, --pose-workers and
    --capture-backlog for MediaPipe; `check_pose_options` has checked them)."""
    if kind == "openpose":
        options: dict[str, Any] = {"image_size": tuple(args.image_size)} if args.image_size else {}
        if args.follow is not None:
            options.update(follow=True, idle_timeout_s=args.follow or None)
        return options
    if kind in ("camera", "video", "url"):
        return {"max_width": args.pose_width, "workers": args.pose_workers, "capture_backlog": args.capture_backlog}
    return {}


def check_source_target(args: argparse.Namespace) -> None:
    """ValueError naming the flag when the input is the wrong kind of thing (a file for a folder, a folder for a
    video, an empty OpenPose folder without --follow); checked before anything opens."""
    from pathlib import Path

    if args.follow is not None and (args.openpose_dir is None or args.follow < 0):
        raise ValueError(f"--follow goes with --openpose-dir and takes IDLE_S >= 0 seconds, got {args.follow:g}"
                         if args.openpose_dir is not None else "--follow goes with --openpose-dir")
    if args.openpose_dir is not None:
        folder = Path(args.openpose_dir)
        if folder.is_file():
            raise ValueError(f"--openpose-dir: {folder} is a file; expected the folder OpenPose --write_json writes "
                             "into")
        if folder.is_dir() and args.follow is None and not any(folder.glob("*.json")):
            raise ValueError(f"--openpose-dir: {folder} holds no .json files yet; add --follow to wait for OpenPose "
                             "to write them")
    if args.video is not None and "://" not in args.video and Path(args.video).is_dir():
        raise ValueError(f"--video: {args.video} is a folder; expected a video file (OpenPose JSON output: "
                         "--openpose-dir)")


def _source_choice(args: argparse.Namespace) -> tuple[str, Any]:
    for flag, kind in (("camera", "camera"), ("video", "video"), ("openpose_dir", "openpose"),
                       ("skeleton_sub", "zmq"), ("replay", "replay")):
        value = getattr(args, flag)
        if value is not None:
            if kind == "video" and "://" in str(value):
                return "url", value
            return kind, value
    return "camera", 0


class LiveApp:
    """Everything one ``sttr-live`` run opens, closed in reverse order by ``close()``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.source = self.publisher = self.overlay = self.view = self.engine = self.demo = None
        self.pipeline: Pipeline | None = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        from ..session import LayoutAdapter, open_live_source, open_model
        from ..tracker import PersonTracker

        a = self.args
        if not a.no_pub:  # first: a taken port is the cheapest thing to find out
            from ..publisher import Publisher

            self.publisher = Publisher(a.pub, fmt=a.format)
        engine, spec = open_model(bundle_dir(a, "sttr-live"), backend=a.backend, precision=a.precision, window=a.window,
                                  threads=a.threads or None)
        self.engine, self.spec = engine, spec
        kind, target = _source_choice(a)
        if a.demo:
            kind, target = "replay", self._open_demo()
        options = source_options(a, kind)
        self.source = open_live_source(kind, target, spec.layout, realtime=a.realtime, pose_model=a.pose_model,
                                       keep_image=bool(a.show or a.record), **options)
        observers: list[Any] = []
        if not a.quiet and not a.demo:  # the demo prints one line per prediction instead
            from ..terminal_view import TerminalView

            self.view = TerminalView()
            observers.append(self.view)
        if a.show or a.record:
            from ..overlay import Overlay

            self.overlay = Overlay(show=a.show, record=a.record, fps=_file_fps(self.source) or 30.0,
                                   on_quit=lambda: self.pipeline.stop() if self.pipeline is not None else None)
            observers.append(self.overlay)
        file_fps = _file_fps(self.source) if not a.realtime else None
        config = LiveConfig(stream=a.stream, stride=a.stride, top_k=a.top_k, smoothing=a.smoothing,
                            realtime=a.realtime, max_frames=a.max_frames, index_fps=file_fps,
                            skip_bad_frames=kind == "zmq")  # another program's frames: skip bad ones, as serve
        self.pipeline = Pipeline(self.source, engine, spec, config, publisher=self.publisher,
                                 adapter=LayoutAdapter(spec.layout), tracker=PersonTracker(max_persons=spec.persons),
                                 observers=observers)

    def _open_demo(self) -> Any:
        """The demo's playlist, and its subscriber connected before the first window is made."""
        from ..demo import TruthPrinter, build_playlist

        if self.publisher is None:
            raise ValueError("--demo shows what a subscriber receives over ZeroMQ: it cannot run with --no-pub")
        playlist, segments = build_playlist()
        _ensure_pose_model(self.args.pose_model)
        print(f"sttr-live --demo: {len(segments)} held-out MSR Action3D recordings (test subjects), each played "
              f"twice at {playlist.fps:g} fps; predictions received on {self.publisher.addr}:", file=sys.stderr)
        self.demo = TruthPrinter(self.publisher.addr, segments, self.args.stream)
        self.demo.start()
        if not self.publisher.wait_for_subscriber(5.0):
            raise RuntimeError(f"the demo subscriber did not connect to {self.publisher.addr} within 5 s")
        return playlist

    def run(self) -> RunStats:
        assert self.pipeline is not None
        stats = self.pipeline.run()
        if self.demo is not None:
            self.demo.stop(expected=stats.predictions)
            print(self.demo.summary(), file=sys.stderr)
            self.demo = None
        return stats

    def close(self) -> None:
        if self.demo is not None:
            self.demo.stop(expected=0, timeout_s=0.0)
        close_all((self.view, self.overlay, self.publisher, self.source, self.engine))


def _ensure_pose_model(path: str | None) -> None:
    """Put the MediaPipe model in place for the webcam, as the first run promises; the replay itself needs none."""
    from ..sources.pose_model import PoseModelError, resolve_pose_model

    try:
        found = resolve_pose_model(path, timeout_s=20.0)
    except (PoseModelError, OSError) as exc:
        print(f"sttr-live: note: {str(exc).splitlines()[0]} (needed for --camera/--video, not for the demo)",
              file=sys.stderr)
    else:
        print(f"sttr-live: pose model for --camera/--video: {found}", file=sys.stderr)


def _file_fps(source: Any) -> float | None:
    """The recorded frame rate of a file source (for --fast, where capture times run faster than the motion)."""
    capture = getattr(source, "capture", None)
    if capture is not None and getattr(capture, "kind", None) == "file":
        return float(capture.fps)
    recording = getattr(source, "recording", None)
    if recording is not None:
        return float(recording.fps)
    return None


def _report(stats: RunStats, path: str | None, window: int | None = None, fps: float | None = None) -> None:
    print(f"frames {stats.frames} in {stats.wall_s:.1f} s ({stats.input_fps:.1f} fps), frames dropped "
          f"{stats.frames_dropped}, windows {stats.windows} (dropped under load {stats.windows_dropped}), "
          f"predictions {stats.predictions}, errors {stats.errors}"
          + (f", bad frames skipped {stats.bad_frames}" if stats.bad_frames else "")
          + (f", frames with invalid joints {stats.invalid_joints_frames}" if stats.invalid_joints_frames else ""),
          file=sys.stderr)
    if stats.frames and not stats.windows and window:  # else "predictions 0" leaves the user guessing
        span = f" at {fps:g} fps ({window / fps:.1f} s)" if fps else ""
        print(f"no window was complete: the model takes {window} frames{span} per window and the input gave "
              f"{stats.frames} frames (a bundle exported with a shorter --window takes shorter clips)", file=sys.stderr)
    if stats.latency_ms:
        print(format_table({k: v for k, v in stats.latency_ms.items() if v["count"]}), file=sys.stderr)
    if path:
        write_output_json(path, stats_dict(stats), "--latency-json", "sttr-live")


def stats_dict(stats: RunStats) -> dict[str, Any]:
    """RunStats as a JSON-ready dict."""
    return {"frames": stats.frames, "wall_s": stats.wall_s, "input_fps": stats.input_fps,
            "frames_dropped": stats.frames_dropped, "windows": stats.windows,
            "windows_dropped": stats.windows_dropped, "predictions": stats.predictions,
            "publish_dropped": stats.publish_dropped, "errors": stats.errors, "bad_frames": stats.bad_frames,
            "invalid_joints_frames": stats.invalid_joints_frames, "latency_ms": stats.latency_ms}


def _error(problem: str | BaseException) -> int:
    return cli_error("sttr-live", problem)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_counts(args)
        check_pose_options(args)
        check_source_target(args)
        check_output_path(args.latency_json, "--latency-json")
    except ValueError as exc:
        return _error(exc)
    try:
        check_stream_id(args.stream)  # before a camera or a port is taken (it names every topic)
    except MessageError as exc:
        return _error(f"--stream: {exc}")
    if args.publish_skeletons:
        from .pose_publish import run_pose_publisher

        return run_pose_publisher(args, _source_choice(args))
    if args.wait_subscriber is not None:
        return _error("--wait-subscriber goes with --publish-skeletons")
    try:
        app = LiveApp(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ImportError, ValueError, RuntimeError, BundleError) as exc:  # no file/camera, port taken, ...
        return _error(exc)
    try:
        stats = run_until_stopped(app.run, lambda: app.pipeline, app.publisher, app.close) or RunStats()
    except UnsupportedAdapterError as exc:  # known at the first frame: the input's skeletons do not fit the model
        return _error(f"{exc} (the input and the model's layout must be one of these pairs: use a model trained on "
                      "the input's layout, or another input)")
    _report(stats, args.latency_json, app.spec.frames, app.spec.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
