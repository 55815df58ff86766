"""``sttr serve``: one inference service for many skeleton streams, their windows batched into one engine call.

Examples::

    sttr-live --camera 0 --publish-skeletons tcp://127.0.0.1:5570 --stream cam0     # pose process, camera 0
    sttr-live --camera 1 --publish-skeletons tcp://127.0.0.1:5571 --stream cam1     # pose process, camera 1
    sttr serve --skeleton-sub tcp://127.0.0.1:5570 --skeleton-sub tcp://127.0.0.1:5571 --bundle b/ --max-batch 8
    sttr sub tcp://127.0.0.1:5555 --status                                          # predictions of both

Ctrl-C or SIGTERM stops cleanly and prints the batch sizes and a latency summary.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from sttr.model.bundle import BundleError

from ..latency import format_table
from .model_options import add_model_options, add_publish_options, add_window_options, bundle_dir, check_counts
from .errors import cli_error
from .output_path import check_output_path, write_output_json
from .shutdown import close_all, run_until_stopped

__all__ = ["main", "build_parser", "ServeApp"]


_EPILOG = """examples:
  sttr-live --camera 0 --publish-skeletons tcp://127.0.0.1:5570 --stream cam0     (pose process per camera)
  sttr-live --camera 1 --publish-skeletons tcp://127.0.0.1:5571 --stream cam1
  sttr serve --skeleton-sub tcp://127.0.0.1:5570 --skeleton-sub tcp://127.0.0.1:5571 --bundle b/
  sttr sub tcp://127.0.0.1:5555 --status   (another terminal: pred.cam0, pred.cam1, status.*)

Ctrl-C or SIGTERM stops cleanly and prints the batch sizes and a latency summary (p50/p95/p99 per stage)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr serve", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Consume many sttr.skeleton/1 streams (topics skel.<stream>), batch their "
                                            "due windows into one engine call,\nand publish one prediction per "
                                            "stream (pred.<stream>) plus status.<stream> about once a second.",
                                epilog=_EPILOG)
    p.add_argument("--skeleton-sub", metavar="ADDR", action="append", required=True,
                   help="subscribe to the skeleton frames published at ADDR (repeat for every pose process)")
    add_model_options(p, 0, "engine CPU threads (default 0 = all: no pose estimator runs here)")
    p.add_argument("--max-batch", type=int, default=8, metavar="B", help="windows per engine call at most (default 8)")
    p.add_argument("--batch-wait-ms", type=float, default=0.0, metavar="MS",
                   help="wait up to MS after the first due window for other streams' windows (default 0: batch "
                        "only what piled up while the engine ran; no added latency)")
    add_window_options(p, "frames of a stream between two predictions (default 8)")
    p.add_argument("--stream-timeout", type=float, default=5.0, metavar="S",
                   help="drop the state of a stream silent for S seconds (default 5)")
    p.add_argument("--max-streams", type=int, default=64, metavar="N", help="streams served at once (default 64)")
    add_publish_options(p)
    p.add_argument("--latency-json", metavar="FILE", help="write the run's statistics and latency summary as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


class ServeApp:
    """Everything one ``sttr serve`` run opens, closed in reverse order by ``close()``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.publisher = self.engine = self.source = self.service = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        from ..publisher import Publisher, check_address
        from ..service import InferenceService, ServiceConfig
        from ..session import open_model
        from ..sources.zmq_skeleton import ZmqSkeletonSource

        a = self.args
        config = ServiceConfig(stride=a.stride, top_k=a.top_k, smoothing=a.smoothing, max_batch=a.max_batch,
                               batch_wait_ms=a.batch_wait_ms, stream_timeout_s=a.stream_timeout,
                               max_streams=a.max_streams)
        for addr in a.skeleton_sub:
            check_address(addr)
        self.publisher = Publisher(a.pub, fmt=a.format)  # first: a taken port is the cheapest thing to find out
        self.engine, spec = open_model(bundle_dir(a, "sttr serve"), backend=a.backend, precision=a.precision,
                                       window=a.window, threads=a.threads or None, max_batch=a.max_batch)
        self.source = ZmqSkeletonSource(a.skeleton_sub)
        self.service = InferenceService(self.source, self.engine, spec, config, publisher=self.publisher)
        self.source.on_bad = self.service.bad_message
        print(f"sttr serve: {spec.name} ({spec.backend}, {spec.layout}, T={spec.frames}) on "
              f"{', '.join(a.skeleton_sub)}; predictions on {self.publisher.addr}", file=sys.stderr)

    def close(self) -> None:
        close_all((self.source, self.publisher, self.engine))


def stats_dict(stats: Any) -> dict[str, Any]:
    """ServiceStats as a JSON-ready dict."""
    return {"frames": stats.frames, "wall_s": stats.wall_s, "bad_messages": stats.bad_messages,
            "streams_seen": stats.streams_seen, "streams_dropped": stats.streams_dropped,
            "streams_refused": stats.streams_refused, "windows": stats.windows,
            "windows_dropped": stats.windows_dropped, "predictions": stats.predictions, "batches": stats.batches,
            "mean_batch": stats.mean_batch, "batch_sizes": {str(k): v for k, v in stats.batch_sizes.items()},
            "errors": stats.errors, "invalid_joints_frames": stats.invalid_joints_frames,
            "latency_ms": stats.latency_ms}


def _report(stats: Any, path: str | None) -> None:
    sizes = ", ".join(f"{size}: {count}" for size, count in stats.batch_sizes.items()) or "none"
    print(f"streams {stats.streams_seen} (dropped silent {stats.streams_dropped}, refused {stats.streams_refused}), "
          f"frames {stats.frames} in {stats.wall_s:.1f} s, bad messages {stats.bad_messages}, windows "
          f"{stats.windows} (dropped under load {stats.windows_dropped}), predictions {stats.predictions}, engine "
          f"calls {stats.batches} (mean batch {stats.mean_batch:.2f}; size: calls {sizes}), errors {stats.errors}",
          file=sys.stderr)
    if stats.latency_ms:
        print(format_table({k: v for k, v in stats.latency_ms.items() if v["count"]}), file=sys.stderr)
    if path:
        write_output_json(path, stats_dict(stats), "--latency-json", "sttr serve")


def _error(problem: str | BaseException) -> int:
    return cli_error("sttr serve", problem)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for flag, value in (("--max-batch", args.max_batch), ("--max-streams", args.max_streams)):
        if value < 1:
            return _error(f"{flag} must be >= 1, got {value}")
    if args.batch_wait_ms < 0 or args.stream_timeout <= 0:
        return _error("--batch-wait-ms must be >= 0 and --stream-timeout > 0")
    try:
        check_counts(args)  # --stride, --top-k, --window, --threads, --smoothing: as sttr-live checks them
        check_output_path(args.latency_json, "--latency-json")
    except ValueError as exc:
        return _error(exc)
    try:
        app = ServeApp(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ImportError, ValueError, RuntimeError, BundleError) as exc:  # bad address, port in use, bundle
        return _error(exc)
    assert app.service is not None
    stats = run_until_stopped(app.service.run, lambda: app.service, app.publisher, app.close)
    _report(stats, args.latency_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
