"""Skeletons from a folder of OpenPose per-frame JSON files (`openpose --write_json DIR`), live or finished.

OpenPose writes `<video>_<frame:012d>_keypoints.json`, one file per frame. This source reads them in frame order
(by the number in the name), as they appear when `follow=True`: it polls the folder every `poll_interval_s`,
and a file that does not parse yet is taken to be still being written and retried until it parses or
`complete_wait_s` has passed. A file that never parses (or a malformed one in a finished folder) is skipped,
logged and recorded in `errors`; it never stops the stream. `follow=False` reads a finished folder once.

Files already in a followed folder when it is opened (a backlog: OpenPose started before us) are history, not
frames arriving now: the newest `backlog_frames` of them are read at once and stamped as if they had arrived at
the video's rate, ending now, so the first window is full and evenly spaced; older ones are passed over (logged).

BODY_25 (75 values per person) and COCO-18 (54 values, layout `openpose18`) are told apart by their length; files
are parsed by `sttr.model.openpose_json`. Once the layout is known, a file in another layout is skipped.
Coordinates are pixels, or [0, 1] when `image_size=(width, height)` is given; undetected joints (score 0) are 0.

Hours of following: OpenPose never deletes its files, so the folder grows by ~108,000 files an hour at 30 fps. What
the source remembers of the files it has seen is per name pattern (`video_<n>_keypoints.json`) the ranges of frame
numbers, a few bytes however many files; only names without a frame number are kept as names. Listing the folder
costs time in proportion to its size, so a large folder is listed at most every `LISTING_COST_RATIO` times what the
last listing took (every poll while it is small), and between listings the next file of the current pattern
(frame n + 1) is looked for by name: the frames OpenPose writes in order arrive at once whatever the folder's size.
"""
from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from sttr.model.openpose_json import OpenPoseJsonError, frame_index_from_name, read_openpose_json

from ..frame import SkeletonFrame
from .frame_files import NumberRanges, name_pattern, pattern_name

__all__ = ["OpenPoseDirSource", "parse_openpose_file", "OpenPoseJsonError"]

logger = logging.getLogger(__name__)

_NUM_JOINTS = {"body25": 25, "openpose18": 18}

LISTING_COST_RATIO = 20.0  # a folder listing costs at most 1/20 of the time between two listings (~5 % of a core)
MAX_PROBES_PER_POLL = 256  # next files looked for by name in one poll (the rest wait for the next poll)
MAX_ERRORS_KEPT = 100  # `errors` keeps the newest ones

def parse_openpose_file(path: str | Path, layout: str | None = None) -> tuple[np.ndarray, str | None]:
    """One `--write_json` file as float32 (P, V, 3) (x, y, score) and its layout (`sttr.model.openpose_json`).

    Raises:
        OpenPoseJsonError: Not (yet) complete JSON, no `people` list, or keypoints that are not BODY_25 / COCO-18
            (or not `layout`).
    """
    try:
        return read_openpose_json(path, layout)
    except (OSError, UnicodeDecodeError) as err:  # vanished or caught mid-write
        raise OpenPoseJsonError(f"{path}: not readable ({err})") from None


def _sort_key(path: Path) -> tuple[int, str]:
    number = frame_index_from_name(path.name)
    return (-1 if number is None else number, path.name)


class OpenPoseDirSource:
    """Iterate over SkeletonFrames from an OpenPose JSON folder.

    Args:
        folder: The `--write_json` folder.
        follow: Keep watching for new files (True) or read the files there now and end (False).
        layout: 'body25' or 'openpose18' (COCO-18); None detects it from the first file with a person.
        image_size: (width, height) of the video, to normalise pixels to [0, 1]; None keeps pixels.
        poll_interval_s: How often a followed folder is listed.
        complete_wait_s: How long a file that does not parse yet is retried before it is skipped as malformed.
        idle_timeout_s: Follow mode: end after this long without a new file; None waits until `close()`.
        backlog_frames: Follow mode: how many of the files already there when following starts are read (the
            newest); None reads them all.
        fps: Finished folders: timestamps are frame number * 1000 / fps (media time).
        clock: Monotonic clock in seconds (tests).

    Frames: `index` is the frame number from the file name; `timestamp_ms` is when the file was read (follow mode,
    monotonic) or its media time (finished folders); `timings_ms['parse']`. `errors` lists skipped files.
    """

    def __init__(self, folder: str | Path, *, follow: bool = True, layout: str | None = None,
                 image_size: tuple[int, int] | None = None, poll_interval_s: float = 0.02,
                 complete_wait_s: float = 1.0, idle_timeout_s: float | None = None, fps: float = 30.0,
                 backlog_frames: int | None = 300, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"OpenPose JSON folder {self.folder} does not exist (openpose --write_json DIR)")
        if layout is not None and layout not in ("body25", "openpose18"):
            raise ValueError(f"layout must be 'body25' or 'openpose18' (COCO-18), got {layout!r}")
        if image_size is not None and min(image_size) <= 0:
            raise ValueError(f"image_size must be (width, height) in pixels, got {image_size}")
        self.follow, self.layout, self.image_size = follow, layout, image_size
        self.poll_interval_s, self.complete_wait_s = poll_interval_s, complete_wait_s
        if backlog_frames is not None and backlog_frames < 0:
            raise ValueError(f"backlog_frames must be >= 0 or None, got {backlog_frames}")
        self.idle_timeout_s, self.fps, self._clock = idle_timeout_s, fps, clock
        self.backlog_frames = backlog_frames
        self._backlog: tuple[tuple[int, str], float] | None = None  # (last backlog key, ms it is stamped with)
        self.errors: list[str] = []
        # waited: files first seen half-written; backlog_passed: old files already there when following started
        self.stats = {"frames": 0, "skipped": 0, "waited": 0, "backlog_passed": 0}
        # every file name seen: frame numbers per name pattern (ranges), and the names without a frame number
        self._seen_numbers: dict[tuple[str, int, str], NumberRanges] = {}
        self._seen_names: set[str] = set()
        self._pending: list[tuple[tuple[int, str], Path]] = []
        self._first_failure: dict[str, float] = {}  # files not complete yet (pending ones only)
        self._last_key: tuple[int, str] | None = None
        self._newest: tuple[tuple[int, str], tuple[str, int, str], int] | None = None  # key, pattern, number
        self._next_listing = 0.0  # time.perf_counter() of the next folder listing
        self._count = 0
        self._stop = threading.Event()

    def _is_new(self, name: str) -> tuple[str, int, str] | None | bool:
        """Record a file name as seen; False when it was seen before, else its pattern (None: no frame number)."""
        parsed = name_pattern(name)
        if parsed is None:
            if name in self._seen_names:
                return False
            self._seen_names.add(name)
            return None
        pattern, number = parsed
        numbers = self._seen_numbers.setdefault(pattern, NumberRanges())
        if number in numbers:
            return False
        numbers.add(number)
        return pattern

    def _queue(self, name: str, pattern: tuple[str, int, str] | None,
               found: list[tuple[tuple[int, str], Path]]) -> bool:
        """A new file (``_is_new``): queued in `found` unless it is out of order."""
        path = self.folder / name
        key = _sort_key(path)
        if self._last_key is not None and key < self._last_key:
            self._skip(path, f"arrived after frame {self._last_key[0]} had been read (out of order)")
            return False
        found.append((key, path))
        if pattern is not None and (self._newest is None or key > self._newest[0]):
            self._newest = (key, pattern, key[0])
        return True

    def _scan(self) -> int:
        """Queue the new files: the next files of the newest one's name pattern (looked for by name), and all new
        files when the folder is due for a listing (every poll while listing it is cheap)."""
        found: list[tuple[tuple[int, str], Path]] = []
        now = time.perf_counter()
        if now >= self._next_listing:
            with os.scandir(self.folder) as entries:
                names = [e.name for e in entries if e.name.endswith(".json")]
            new = [(name, pattern) for name in names if (pattern := self._is_new(name)) is not False]
            done = time.perf_counter()  # the cost of a listing, without the new files' (a first backlog's) handling
            self._next_listing = done + LISTING_COST_RATIO * (done - now)
            for name, pattern in new:
                self._queue(name, pattern, found)
        elif self.follow:
            for _ in range(MAX_PROBES_PER_POLL):
                if self._newest is None:
                    break
                _, pattern, number = self._newest
                name = pattern_name(pattern, number + 1)
                if not os.path.exists(os.path.join(self.folder, name)):
                    break
                pattern = self._is_new(name)
                if pattern is False or not self._queue(name, pattern, found):
                    break
        if found:
            self._pending.extend(found)
            self._pending.sort()
        return len(found)

    def _skip(self, path: Path, why: str) -> None:
        msg = f"skipped OpenPose file {path.name}: {why}"
        logger.warning(msg)
        self.errors.append(msg)
        del self.errors[:-MAX_ERRORS_KEPT]
        self.stats["skipped"] += 1

    def _try_parse(self, path: Path) -> tuple[np.ndarray, str | None] | None | bool:
        """Parsed arrays; None when skipped; False when it may still be being written."""
        try:
            return parse_openpose_file(path, self.layout)
        except OpenPoseJsonError as err:
            if self.follow:
                if path.name not in self._first_failure:
                    self.stats["waited"] += 1
                first = self._first_failure.setdefault(path.name, self._clock())
                if self._clock() - first < self.complete_wait_s:
                    return False
                del self._first_failure[path.name]
            self._skip(path, str(err))
            return None

    def _frame(self, key: tuple[int, str], arrays: tuple[np.ndarray, str | None], parse_ms: float) -> SkeletonFrame:
        people, layout = arrays
        if layout and self.layout is None:
            self.layout = layout
            logger.info("OpenPose folder %s: %s keypoints", self.folder, layout)
        expected = self.layout or "openpose18"  # a folder that starts without people: COCO-18 until told
        num_joints = _NUM_JOINTS[expected]
        joints = people[..., :2].reshape(-1, num_joints, 2)
        scores = people[..., 2].reshape(-1, num_joints)
        if self.image_size is not None:
            joints = joints / np.asarray(self.image_size, dtype=np.float32)
        joints = np.where(scores[..., None] > 0, joints, 0.0)
        index = key[0] if key[0] >= 0 else self._count
        if not self.follow:
            stamp = index * 1e3 / self.fps
        elif self._backlog is not None and key <= self._backlog[0]:
            last_key, last_ms = self._backlog  # history: spaced at the video's rate, the newest stamped "now"
            stamp = last_ms - (max(last_key[0] - key[0], 0) if key[0] >= 0 else 0) * 1e3 / self.fps
        else:
            stamp = self._clock() * 1e3
        self._count += 1
        self.stats["frames"] += 1
        return SkeletonFrame(layout=expected, timestamp_ms=stamp, index=index, joints=joints, scores=scores,
                             timings_ms={"parse": parse_ms})

    def _ready_frames(self) -> Iterator[SkeletonFrame]:
        while self._pending:
            key, path = self._pending[0]
            if self.follow and self._missed_previous(path.name):
                continue  # it is queued ahead of this file now
            t0 = time.perf_counter()
            parsed = self._try_parse(path)
            if parsed is False:
                return  # the head of the queue is still being written: keep the order, wait for it
            self._pending.pop(0)
            self._first_failure.pop(path.name, None)
            self._last_key = key
            if parsed is not None:
                yield self._frame(key, parsed, (time.perf_counter() - t0) * 1e3)

    def _missed_previous(self, name: str) -> bool:
        """Queue the previous frame number's file when it exists and was never seen: a listing made while OpenPose
        created files can list a newer file and miss an older one (directory order is not creation order)."""
        parsed = name_pattern(name)
        if parsed is None or parsed[1] == 0:
            return False
        pattern, number = parsed
        previous = pattern_name(pattern, number - 1)
        if number - 1 in self._seen_numbers[pattern] or not os.path.exists(os.path.join(self.folder, previous)):
            return False
        found: list[tuple[tuple[int, str], Path]] = []
        self._seen_numbers[pattern].add(number - 1)
        if not self._queue(previous, pattern, found):
            return False
        bisect.insort(self._pending, found[0])
        return True

    def _take_backlog(self) -> None:
        """The files already there when following starts: keep the newest `backlog_frames`, pass over the rest."""
        if not self._pending:
            return
        keep = len(self._pending) if self.backlog_frames is None else min(self.backlog_frames, len(self._pending))
        passed = len(self._pending) - keep
        if passed:
            logger.info("OpenPose folder %s: %d files were already there; reading the newest %d", self.folder,
                        len(self._pending), keep)
            self._last_key = self._pending[passed - 1][0]
            del self._pending[:passed]
            self.stats["backlog_passed"] = passed
        if self._pending:
            self._backlog = (self._pending[-1][0], self._clock() * 1e3)

    def __iter__(self) -> Iterator[SkeletonFrame]:
        last_new = self._clock()
        first = True
        while not self._stop.is_set():
            if self._scan():
                last_new = self._clock()
            if first and self.follow:
                self._take_backlog()
            first = False
            yield from self._ready_frames()
            if not self.follow:
                return
            if self.idle_timeout_s is not None and self._clock() - last_new > self.idle_timeout_s \
                    and not self._pending:
                return
            self._stop.wait(self.poll_interval_s)

    @property
    def frames_dropped(self) -> int:
        """Files skipped (malformed, another layout, out of order)."""
        return self.stats["skipped"]

    def close(self) -> None:
        """Stop following (an iteration in another thread ends at its next poll)."""
        self._stop.set()

    def __enter__(self) -> "OpenPoseDirSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
