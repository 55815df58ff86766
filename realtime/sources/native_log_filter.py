"""Keep MediaPipe's start-up chatter off the user's terminal without losing anything else written to stderr.

MediaPipe 1.2 (LiteRT underneath) writes ~90 lines per `sttr-live` start straight to file descriptor 2 from C++:
"INFO: [environment.cc:36] Creating LiteRT environment", one "Sparsity tensors may not yet be fully supported" per
tensor of the pose model, accelerator registration and destruction. No environment variable turns them off
(GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL, ABSL_MIN_LOG_LEVEL: tried). `native_stderr_filtered()` redirects fd 2
into a temporary file around such a call and afterwards writes back every line that is not known noise, so a real
warning or error (ours, Python's, MediaPipe's) still reaches the terminal, only later.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator, Sequence

__all__ = ["native_stderr_filtered", "MEDIAPIPE_NOISE"]

MEDIAPIPE_NOISE: tuple[re.Pattern[bytes], ...] = tuple(re.compile(p) for p in (
    rb"^INFO: \[",  # LiteRT's info lines: environment, accelerator registry, compiled model
    rb"^WARNING: \[model_load\.cc:\d+\] Sparsity tensors may not yet be fully supported",
    rb"^WARNING: Logging before InitGoogle\(\) is written to STDERR",
    rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU",
    # glog lines of the first inference (see PoseEstimator's warm-up): an input copy, nothing the user can act on
    rb"^W\d{4} [\d:.]+ +\d+ inference_runner_litert\.cc:\d+\] Input tensor memory is not aligned",
))


@contextlib.contextmanager
def native_stderr_filtered(noise: Sequence[re.Pattern[bytes]] = MEDIAPIPE_NOISE) -> Iterator[None]:
    """Inside the block, what anything in this process writes to fd 2 is held back; on leaving, the lines that match
    none of `noise` are written to fd 2. Meant for short calls at start-up and shut-down (held-back output of other
    threads comes out late, never lost)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (a closed or replaced stderr): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True)
                    if not any(p.search(line) for p in noise)]
            if kept:
                os.write(2, b"".join(kept))
