"""The live latency benchmark behind ``sttr bench live`` and ``benchmarks/live_latency.py``.

For each backend it runs the whole pipeline on a video twice:

``realtime``  the video plays at its own rate through a capture thread (newest frame wins, as with a camera);
              inference in its worker thread, newest window wins.
``fast``      every frame, as fast as the machine goes; no frame or window is dropped (``--fast``).

and, with ``pose='both'`` (default), also on skeletons extracted once beforehand (``cached``: MediaPipe's time left
out, so the numbers show what the rest of the pipeline costs). A subscriber in the same process receives every
prediction over real loopback TCP. End-to-end latency is measured from the capture of the newest frame in the
window to the message's arrival at the subscriber: on the monotonic clock against the frame's capture timestamp in
real-time runs, and from the pipeline's own capture-start stamp (``perf_counter``) in fast runs, where file
timestamps are media time. numpy at import; the rest is imported when a run starts.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .latency import format_table, machine_info, summarize
from .pipeline import LiveConfig, ModelSpec, Pipeline
from .sources.capture import DEFAULT_BACKLOG
from .sources.mediapipe_pose import DEFAULT_POSE_WIDTH, default_pose_workers

__all__ = ["run_live_bench", "run_case", "format_results", "extract_skeletons", "BenchInterrupted"]

logger = logging.getLogger(__name__)


# how often the collector checks, while no message comes, that the bench that started it is still there
_PARENT_CHECK_S = 0.5
MODES = ("realtime", "fast")
POSE_KINDS = ("mediapipe", "cached", "both")
# the distributions a report records the versions of (alternatives: the one installed)
PACKAGES = ("numpy", "onnxruntime|onnxruntime-gpu", "tensorrt|tensorrt-cu12|tensorrt-cu11", "torch", "mediapipe",
            "opencv-python|opencv-contrib-python|opencv-python-headless|opencv-contrib-python-headless", "pyzmq")


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during the bench; ``report`` holds the runs finished before it (possibly none)."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.report = report


class _Collector:
    """A subscriber in its own process (as real consumers are), so it takes no GIL from the pipeline.

    It records, per prediction, the sequence number, the arrival time on the monotonic clock (system-wide on
    Linux, so comparable with the pipeline's timestamps) and the newest frame's capture timestamp, and reports them
    as JSON when the bench sends ``bench.end``. It never outlives the bench: ``close()`` kills it, and it exits by
    itself when the bench process is gone (killed without a chance to clean up).
    """

    def __init__(self, addr: str) -> None:
        import os
        import subprocess
        import sys

        self._proc = subprocess.Popen([sys.executable, "-m", "sttr.realtime.live_bench", "collect", addr,
                                       str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def close(self) -> None:
        """Kill the collector if it still runs (an interrupted or failed run)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()

    def finish(self, pub: Any, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Tell the collector the run is over (retrying: the end marker is a normal PUB message); its records."""
        import json
        import subprocess

        deadline = time.monotonic() + timeout_s
        while True:
            pub.send_raw(b"bench.end", b"{}")
            try:
                out, err = self._proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self._proc.kill()
                    raise RuntimeError("bench subscriber did not finish") from None
        if self._proc.returncode != 0:
            raise RuntimeError(f"bench subscriber failed: {err.strip()[-500:]}")
        return json.loads(out)


def _collect_main(addr: str, parent_pid: int) -> int:
    """``python -m sttr.realtime.live_bench collect ADDR PARENT_PID``: receive until ``bench.end``; print records as
    JSON. Exits (status 3) once PARENT_PID is no longer its parent: the bench died without ending it."""
    import json
    import os
    import signal
    import sys

    from .client import parse_message
    from .publisher import require_zmq

    zmq = require_zmq()
    sock = zmq.Context.instance().socket(zmq.SUB)
    for topic in (b"pred.", b"bench.end"):
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.setsockopt(zmq.RCVHWM, 100000)
    sock.connect(addr)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the bench decides when we end
    records = []
    while True:
        if not sock.poll(int(_PARENT_CHECK_S * 1000), zmq.POLLIN):
            if os.getppid() != parent_pid:
                sock.close(0)
                return 3
            continue
        frames = sock.recv_multipart()
        arrival_ms = time.monotonic() * 1e3
        if frames[0] == b"bench.end":
            break
        msg = parse_message(frames)
        records.append({"seq": msg.seq, "arrival_ms": arrival_ms, "t_last_ms": msg.window.t_last_ms,
                        "total_ms": msg.latency_ms["total"]})
    sock.close(0)
    json.dump(records, sys.stdout)
    return 0


def extract_skeletons(video: str | Path, model_layout: str, pose_model: str | None = None,
                      max_frames: int | None = None, pose_width: int = DEFAULT_POSE_WIDTH,
                      pose_workers: int | None = None) -> tuple[list[Any], float]:
    """Run MediaPipe over every frame of a video once; returns (SkeletonFrames without images, video fps)."""
    from .session import open_live_source

    source = open_live_source("video", str(video), model_layout, realtime=False, pose_model=pose_model,
                              max_width=pose_width, workers=pose_workers)
    try:
        fps = float(source.capture.fps)
        frames = []
        for frame in source:
            frames.append(replace(frame, image=None))
            if max_frames and len(frames) >= max_frames:
                break
    finally:
        source.close()
    return frames, fps


def _paced(frames: Sequence[Any], fps: float | None, loops: int = 1) -> Iterator[Any]:
    """Re-yield cached frames ``loops`` times as one stream (indices go on), with fresh monotonic timestamps, at
    ``fps`` (None: as fast as possible)."""
    start = time.monotonic()
    for i, frame in enumerate(itertools.chain.from_iterable(itertools.repeat(frames, loops))):
        if fps:
            wait = start + i / fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield replace(frame, index=i, timestamp_ms=time.monotonic() * 1e3, timings_ms={"capture": 0.0, "pose": 0.0})


def run_case(open_source: Callable[[], tuple[Any, float]], engine: Any, spec: ModelSpec, *, mode: str, stride: int,
             max_frames: int | None = None) -> dict[str, Any]:
    """Run one pipeline with a subscriber attached; returns its measurements.

    ``open_source()`` returns (source, the video's fps); it is called only once the subscriber is connected, so a
    video playing in a capture thread loses no frames to the bench's own start-up. The source is closed after.
    """
    from .publisher import Publisher
    from .session import LayoutAdapter
    from .tracker import PersonTracker

    realtime = mode == "realtime"
    starts: dict[int, float] = {}  # seq -> capture start of the newest frame, monotonic ms

    def remember(seq: int, start_ns: int) -> None:
        starts[seq] = time.monotonic() * 1e3 - (time.perf_counter_ns() - start_ns) / 1e6

    with Publisher("tcp://127.0.0.1:*", sndhwm=100000) as pub:
        collector = _Collector(pub.addr)
        try:
            if not pub.wait_for_subscriber(30.0):
                raise RuntimeError("bench subscriber did not connect within 30 s")
            source, video_fps = open_source()
            try:
                config = LiveConfig(stream="bench", stride=stride, realtime=realtime, max_frames=max_frames,
                                    index_fps=None if realtime else video_fps, status_period_s=1.0)
                pipe = Pipeline(source, engine, spec, config, publisher=pub, adapter=LayoutAdapter(spec.layout),
                                tracker=PersonTracker(max_persons=spec.persons))
                pipe.on_publish = remember
                stats = pipe.run()
            finally:
                if hasattr(source, "close"):
                    source.close()
            received = collector.finish(pub)
        finally:
            collector.close()
    if realtime:  # the frame's own capture timestamp (monotonic ms)
        e2e = [r["arrival_ms"] - r["t_last_ms"] for r in received]
    else:  # file timestamps are media time: use the pipeline's capture-start stamp
        e2e = [r["arrival_ms"] - starts[r["seq"]] for r in received if r["seq"] in starts]
    seqs = [r["seq"] for r in received]
    return {
        "mode": mode, "stride": stride, "frames": stats.frames, "wall_s": round(stats.wall_s, 3),
        "sustained_fps": round(stats.input_fps, 2), "frames_dropped": stats.frames_dropped,
        "windows": stats.windows, "windows_dropped": stats.windows_dropped, "predictions": stats.predictions,
        "received": len(received), "in_order": seqs == sorted(seqs), "publish_dropped": stats.publish_dropped,
        "errors": stats.errors, "video_fps": video_fps, "window": spec.frames, "model_fps": spec.fps,
        "stages_ms": stats.latency_ms, "end_to_end_ms": summarize(np.asarray(e2e)),
    }


def run_live_bench(video: str | Path, bundle_dir: str | Path, backends: Sequence[str] = ("onnxruntime",),
                   precision: str = "fp32", stride: int = 8, window: int | None = None,
                   modes: Sequence[str] = ("realtime", "fast"), pose: str = "both", pose_model: str | None = None,
                   max_frames: int | None = None, threads: int | None = 1,
                   pose_width: int = DEFAULT_POSE_WIDTH, pose_workers: int | None = None,
                   loops: int = 1, capture_backlog: int = DEFAULT_BACKLOG) -> dict[str, Any]:
    """Benchmark the live pipeline per backend and mode; returns a JSON-ready report.

    Args:
        video: the video file.
        bundle_dir: the model bundle.
        backends: engine backends to run (one run each per mode and pose setting).
        stride: frames between windows.
        window: frames of history (None: the model's T).
        modes: ``realtime`` and/or ``fast``.
        pose: ``mediapipe`` (pose estimated live), ``cached`` (skeletons extracted once first) or ``both``.
        max_frames: cap per run.
        threads: engine CPU threads (onnxruntime / torch); None for the backend's default.
        pose_width: images wider than this are scaled down before MediaPipe (0: full size).
        pose_workers: MediaPipe landmarkers sharing the frames (None: ``default_pose_workers()``).
        loops: play the video this many times in a row per run, as one stream (more windows for the percentiles).
        capture_backlog: realtime mode: frames the capture keeps unread before dropping the oldest.

    Raises:
        BenchInterrupted: Ctrl-C (KeyboardInterrupt) during a run; it carries the report of the runs finished.
    """
    _check_settings(backends=backends, stride=stride, window=window, modes=modes, pose=pose, max_frames=max_frames,
                    threads=threads, pose_width=pose_width, pose_workers=pose_workers, loops=loops,
                    capture_backlog=capture_backlog)
    results: list[dict[str, Any]] = []

    def report() -> dict[str, Any]:
        return {"video": str(video), "bundle": str(bundle_dir), "backends": list(backends), "precision": precision,
                "stride": stride, "window": window, "modes": list(modes), "pose": pose, "max_frames": max_frames,
                "threads": threads, "pose_width": pose_width, "pose_workers": pose_workers or default_pose_workers(),
                "loops": loops, "capture_backlog": capture_backlog, "results": results, "machine": _machine()}

    try:
        _run_all(results, video, bundle_dir, backends, precision, stride, window, modes, pose, pose_model, max_frames,
                 threads, pose_width, pose_workers, loops, capture_backlog)
    except KeyboardInterrupt:
        raise BenchInterrupted(report()) from None
    return report()


def _check_settings(*, backends: Sequence[str], stride: int, window: int | None, modes: Sequence[str], pose: str,
                    max_frames: int | None, threads: int | None, pose_width: int, pose_workers: int | None,
                    loops: int, capture_backlog: int) -> None:
    """ValueError naming the first bad setting, before any run starts (a bad one used only by a later run, e.g. the
    capture backlog of the MediaPipe runs, failed after the earlier runs had taken their minutes)."""
    for name, value, least in (("stride", stride, 1), ("window", window, 1), ("max_frames", max_frames, 1),
                               ("threads", threads, 1), ("pose_workers", pose_workers, 1), ("loops", loops, 1),
                               ("capture_backlog", capture_backlog, 1), ("pose_width", pose_width, 0)):
        if value is not None and value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
    if not backends:
        raise ValueError("no backend to run")
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"modes must be some of {MODES}, got {list(modes)}")
    if pose not in POSE_KINDS:
        raise ValueError(f"pose must be one of {POSE_KINDS}, got {pose!r}")


def _run_all(results: list[dict[str, Any]], video: str | Path, bundle_dir: str | Path, backends: Sequence[str],
             precision: str, stride: int, window: int | None, modes: Sequence[str], pose: str,
             pose_model: str | None, max_frames: int | None, threads: int | None, pose_width: int,
             pose_workers: int | None, loops: int, capture_backlog: int) -> None:
    """Every (backend, pose, mode) run of ``run_live_bench``, each result appended to ``results`` as it ends."""
    from .session import open_live_source, open_model

    cached: tuple[list[Any], float] | None = None
    for backend in backends:
        engine, spec = open_model(bundle_dir, backend=backend, precision=precision, window=window, threads=threads)
        for pose_kind in (("mediapipe", "cached") if pose == "both" else (pose,)):
            if pose_kind == "cached" and cached is None:
                cached = extract_skeletons(video, spec.layout, pose_model, max_frames, pose_width, pose_workers)
            for mode in modes:
                realtime = mode == "realtime"
                if pose_kind == "cached":
                    frames, fps = cached

                    def opener(frames=frames, fps=fps, realtime=realtime) -> tuple[Any, float]:
                        return _paced(frames, fps if realtime else None, loops), fps
                else:
                    def opener(realtime=realtime) -> tuple[Any, float]:
                        src = open_live_source("video", str(video), spec.layout, realtime=realtime,
                                               pose_model=pose_model, max_width=pose_width,
                                               workers=pose_workers, loops=loops,
                                               capture_backlog=capture_backlog)
                        return src, float(src.capture.fps)
                logger.info("bench: %s %s %s", backend, pose_kind, mode)
                result = run_case(opener, engine, spec, mode=mode, stride=stride, max_frames=max_frames)
                results.append({"backend": spec.backend, "precision": precision, "pose": pose_kind, **result})


def _machine() -> dict[str, Any]:
    """CPU model and count, load, platform, Python and the versions of the runtimes the live path uses."""
    return machine_info(PACKAGES)


def _x_video(r: dict[str, Any]) -> float:
    """Sustained fps over the video's own fps (1.00: keeps up in real time; NaN when the video's fps is unknown)."""
    video_fps = r.get("video_fps")
    return r["sustained_fps"] / video_fps if video_fps else float("nan")


def format_results(report: dict[str, Any]) -> str:
    """Tables: one summary line per run, then per-stage p50/p95/p99 for each run."""
    head = (f"{'backend':<12}{'pose':<10}{'mode':<9}{'fps':>7}{'x video':>8}{'frames':>7}{'drop':>6}{'win':>5}"
            f"{'wdrop':>6}{'e2e p50':>9}{'e2e p95':>9}{'e2e p99':>9}{'pub p99':>9}{'pubcpu99':>9}")
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        e2e, send, cpu = r["end_to_end_ms"], r["stages_ms"].get("send", {}), r["stages_ms"].get("send_cpu", {})
        lines.append(f"{r['backend']:<12}{r['pose']:<10}{r['mode']:<9}{r['sustained_fps']:>7.1f}{_x_video(r):>8.2f}"
                     f"{r['frames']:>7}{r['frames_dropped']:>6}{r['windows']:>5}{r['windows_dropped']:>6}"
                     f"{e2e['p50']:>9.1f}{e2e['p95']:>9.1f}{e2e['p99']:>9.1f}{send.get('p99', float('nan')):>9.3f}"
                     f"{cpu.get('p99', float('nan')):>9.3f}")
    lines.append("x video: sustained fps / the video's fps (realtime runs cannot exceed 1); frames: frames processed, "
                 "drop: frames skipped (newest wins); e2e: capture of the window's newest frame -> subscriber")
    for r in report["results"]:
        if r["frames"] and not r["windows"] and r.get("window"):
            span = f" ({r['window'] / r['model_fps']:.1f} s at the model's {r['model_fps']:g} fps)" \
                if r.get("model_fps") else ""
            lines.append(f"no window was complete in {r['backend']} {r['pose']} {r['mode']}: the model takes "
                         f"{r['window']} frames{span} per window and the run had {r['frames']} frames "
                         "(raise --max-frames, or --loops for a short video)")
    for r in report["results"]:
        stages = {k: v for k, v in r["stages_ms"].items() if v["count"]}
        stages["end_to_end"] = r["end_to_end_ms"]
        lines += ["", format_table(stages, title=f"{r['backend']} {r['pose']} {r['mode']} (ms)")]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "collect" and sys.argv[3].isdigit():
        sys.exit(_collect_main(sys.argv[2], int(sys.argv[3])))
    sys.exit("usage: python -m sttr.realtime.live_bench collect ADDR PARENT_PID (internal; use `sttr bench live`)")
