"""Names of per-frame files (`video_000000000042_keypoints.json`) and the set of frame numbers seen, kept as ranges:
what a followed folder remembers of hours of files in a few bytes (see `openpose_dir`)."""
from __future__ import annotations

import bisect
import re

__all__ = ["NumberRanges", "name_pattern", "pattern_name"]

_PATTERN = re.compile(r"^(.*?)(\d+)(_keypoints\.json|\.json)$")  # the digits frame_index_from_name reads


def name_pattern(name: str) -> tuple[tuple[str, int, str], int] | None:
    """((prefix, digits, suffix), frame number) of a name with a frame number; the pattern and the number give the
    name back exactly (``pattern_name``). None for a name without a frame number."""
    match = _PATTERN.match(name)
    if match is None:
        return None
    prefix, digits, suffix = match.groups()
    return (prefix, len(digits), suffix), int(digits)


def pattern_name(pattern: tuple[str, int, str], number: int) -> str:
    prefix, width, suffix = pattern
    return f"{prefix}{number:0{width}d}{suffix}"


class NumberRanges:
    """A set of integers kept as sorted, disjoint, non-adjacent [start, end] ranges: consecutive frame numbers cost
    one range however many there are."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        """The number of ranges (not of integers)."""
        return len(self._starts)

    def __contains__(self, n: int) -> bool:
        i = bisect.bisect_right(self._starts, n) - 1
        return i >= 0 and n <= self._ends[i]

    def add(self, n: int) -> None:
        i = bisect.bisect_right(self._starts, n) - 1  # the range starting at or before n
        if i >= 0 and n <= self._ends[i]:
            return
        joins_left = i >= 0 and self._ends[i] == n - 1
        joins_right = i + 1 < len(self._starts) and self._starts[i + 1] == n + 1
        if joins_left and joins_right:
            self._ends[i] = self._ends[i + 1]
            del self._starts[i + 1], self._ends[i + 1]
        elif joins_left:
            self._ends[i] = n
        elif joins_right:
            self._starts[i + 1] = n
        else:
            self._starts.insert(i + 1, n)
            self._ends.insert(i + 1, n)
