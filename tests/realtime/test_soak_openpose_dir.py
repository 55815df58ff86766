"""Soak: a followed OpenPose folder keeps growing for hours (OpenPose never deletes its files, ~108,000 an hour at
30 fps). What the source remembers per file must stay tiny, and it must not list the whole folder on every poll."""
from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc

import pytest

from sttr.realtime.sources import openpose_dir
from sttr.realtime.sources.frame_files import NumberRanges
from sttr.realtime.sources.openpose_dir import OpenPoseDirSource

EMPTY = '{"version": 1.3, "people": []}'


def _name(i: int) -> str:
    return f"cam_{i:012d}_keypoints.json"


def _follow_while_writing(folder, first: int, count: int, source: OpenPoseDirSource) -> list[int]:
    """Write files first..first+count-1 one by one while `source` follows the folder; the frame indices read."""
    def write():
        for i in range(first, first + count):
            (folder / _name(i)).write_text(EMPTY)
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    got: list[int] = []
    writer.start()
    try:
        for frame in source:
            got.append(frame.index)
            if frame.index == first + count - 1:
                break
    finally:
        writer.join()
    return got


def _check_read(got: list[int], end: int, source: OpenPoseDirSource) -> None:
    """Frames in order up to `end` - 1; a file listed while being created may be seen after a later one (directory
    order is not creation order) and skipped as out of order, but then it is counted, never lost silently."""
    assert got == sorted(set(got)) and got[-1] == end - 1
    assert got[0] + len(got) + source.stats["skipped"] == end


def test_memory_per_file_stays_flat(tmp_path):
    source = OpenPoseDirSource(tmp_path, follow=True, idle_timeout_s=5.0, poll_interval_s=0.001)
    _check_read(_follow_while_writing(tmp_path, 0, 300, source), 300, source)  # warm up: first allocations made
    gc.collect()
    tracemalloc.start(8)
    try:
        before = tracemalloc.take_snapshot()
        got = _follow_while_writing(tmp_path, 300, 2000, source)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    source.close()
    _check_read(got, 2300, source)
    grown = sum(s.size_diff for s in after.compare_to(before, "traceback")  # what the source's own code keeps
                if any(f.filename.endswith("openpose_dir.py") for f in s.traceback)
                and not any(f.filename.endswith("openpose_json.py") for f in s.traceback))  # parsing temporaries
    assert grown < 100_000, f"{grown} bytes kept for 2000 files"


def test_a_large_folder_is_not_listed_on_every_poll(tmp_path, monkeypatch):
    for i in range(3000):  # an hour-old folder, scaled down
        (tmp_path / _name(i)).write_text(EMPTY)
    listed = [0]
    real_scandir = os.scandir

    class CountingScandir:
        def __init__(self, path):
            self._it = real_scandir(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._it.close()

        def __iter__(self):
            for entry in self._it:
                listed[0] += 1
                yield entry

    monkeypatch.setattr(os, "scandir", CountingScandir)
    source = OpenPoseDirSource(tmp_path, follow=True, idle_timeout_s=5.0, poll_interval_s=0.002, backlog_frames=10)
    got = _follow_while_writing(tmp_path, 3000, 300, source)
    source.close()
    _check_read(got, 3300, source)
    # listing the folder on every poll enumerates ~3000 entries each time (hundreds of polls: ~10^6 entries)
    assert listed[0] < 25 * 3300, f"{listed[0]} folder entries enumerated to read 300 new files"


def test_files_out_of_the_name_pattern_are_still_found(tmp_path, monkeypatch):
    monkeypatch.setattr(openpose_dir, "LISTING_COST_RATIO", 0.0)  # list on every poll
    for i in range(5):
        (tmp_path / _name(i)).write_text(EMPTY)
    source = OpenPoseDirSource(tmp_path, follow=True, idle_timeout_s=0.3, poll_interval_s=0.002)
    frames = []
    for frame in source:
        frames.append(frame.index)
        if frame.index == 4:
            (tmp_path / _name(6)).write_text(EMPTY)  # frame 5 never written: found by a listing, not by name
            (tmp_path / "other_000000000007_keypoints.json").write_text(EMPTY)
            (tmp_path / _name(2)).write_text(EMPTY)  # rewritten: the same name is not read twice
    assert frames == [0, 1, 2, 3, 4, 6, 7]
    assert source.stats["skipped"] == 0 and not source._first_failure


@pytest.mark.parametrize("order", [range(50), range(49, -1, -1), [5, 3, 4, 10, 1, 2, 0, 8, 9, 7, 6]])
def test_number_ranges(order):
    ranges = NumberRanges()
    added = set()
    for n in order:
        ranges.add(n)
        added.add(n)
        assert all((k in ranges) == (k in added) for k in range(-2, 55))
    assert len(ranges) == 1  # consecutive numbers: one range
    ranges.add(100)
    assert len(ranges) == 2 and 100 in ranges and 99 not in ranges


def test_errors_kept_are_bounded(tmp_path):
    for i in range(300):
        (tmp_path / _name(i)).write_text("[1, 2]")  # not OpenPose output: every file skipped
    source = OpenPoseDirSource(tmp_path, follow=False)
    assert list(source) == []
    assert source.stats["skipped"] == 300 and len(source.errors) <= openpose_dir.MAX_ERRORS_KEPT
    assert _name(299) in source.errors[-1]
