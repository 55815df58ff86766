"""Live pipeline latency on a video: per-stage p50/p95/p99, end-to-end latency, sustained fps, drops; table + JSON.

    python benchmarks/live_latency.py --video ../shared/data/video/sports2d_demo_2people.mp4 --bundle B \
        --backends onnxruntime --out live_latency.json

A thin wrapper over `sttr bench live` (sttr.realtime.live_bench); the same arguments.
"""
from __future__ import annotations

import sys

from sttr.realtime.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(["live", *sys.argv[1:]]))
