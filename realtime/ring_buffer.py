"""Fixed-size ring buffer of skeleton frames for streaming inference.

A frame is (M, V, C) float32 (persons × joints × channels, already in the model's layout and person slots); a
window is handed out as (C, T, V, M), the layout the model and the reference tools use. Every array is allocated
once in the constructor: ``push`` copies one frame into a slot and writes two numbers, and ``window`` writes into a
caller-supplied (or the buffer's own) preallocated output.

Timestamps (monotonic milliseconds) drive the window: with ``fps`` given, the window is resampled to that rate on
the frames' timestamps (nearest or linear interpolation), so a source running at 25 or 60 fps, with jitter or a
dropped frame, still gives the model T frames spaced as in training. A gap longer than ``max_gap_ms`` between two
frames is not interpolated across: the samples inside it hold the nearest frame.

numpy only: realtime/ must not pull in torch.
"""
from __future__ import annotations

import logging
from typing import Literal

import numpy as np

__all__ = ["RingBuffer", "Interpolation"]

logger = logging.getLogger(__name__)

Interpolation = Literal["nearest", "linear"]


class RingBuffer:
    """Preallocated ring of the last ``capacity`` frames with their timestamps and source frame indices.

    Args:
        capacity: frames kept; at least the window length T (more when the input runs faster than the model's fps).
        num_persons: M, person slots per frame.
        num_joints: V, joints per person.
        num_channels: C, channels per joint (e.g. x, y, z or x, y, score).
        max_gap_ms: two consecutive frames further apart than this are not interpolated between.
    """

    def __init__(self, capacity: int, num_persons: int, num_joints: int, num_channels: int,
                 max_gap_ms: float = 250.0) -> None:
        for name, value in (("capacity", capacity), ("num_persons", num_persons), ("num_joints", num_joints),
                            ("num_channels", num_channels)):
            if int(value) < 1:
                raise ValueError(f"RingBuffer {name} must be >= 1, got {value}")
        self.capacity = int(capacity)
        self.max_gap_ms = float(max_gap_ms)
        self._frames = np.zeros((self.capacity, num_persons, num_joints, num_channels), dtype=np.float32)
        # Timestamps and indices are written twice (slot i and i + capacity), so the frames in time order are
        # always one contiguous slice of these arrays: no roll, no copy, searchsorted works on a view.
        self._times = np.zeros(2 * self.capacity, dtype=np.float64)
        self._indices = np.zeros(2 * self.capacity, dtype=np.int64)
        self._next = 0  # slot the next push writes
        self._count = 0
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ state
    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(M, V, C) of one frame."""
        return self._frames.shape[1:]  # type: ignore[return-value]

    def __len__(self) -> int:
        return self._count

    @property
    def _start(self) -> int:
        return (self._next - self._count) % self.capacity

    def timestamps(self) -> np.ndarray:
        """A read-only view of the stored timestamps (ms), oldest first."""
        view = self._times[self._start:self._start + self._count]
        view.flags.writeable = False
        return view

    def frame_indices(self) -> np.ndarray:
        """A read-only view of the stored source frame indices, oldest first."""
        view = self._indices[self._start:self._start + self._count]
        view.flags.writeable = False
        return view

    @property
    def last_timestamp_ms(self) -> float | None:
        """Timestamp of the newest frame, or None when empty."""
        return float(self._times[self._start + self._count - 1]) if self._count else None

    def span_ms(self) -> float:
        """Time between the oldest and the newest stored frame (0 when fewer than two)."""
        if self._count < 2:
            return 0.0
        s = self._start
        return float(self._times[s + self._count - 1] - self._times[s])

    def clear(self) -> None:
        """Forget every frame (the arrays are kept)."""
        self._next = 0
        self._count = 0

    # ------------------------------------------------------------------ writing
    def push(self, frame: np.ndarray, timestamp_ms: float, index: int = -1) -> None:
        """Append one (M, V, C) frame in O(1), overwriting the oldest when full.

        Args:
            frame: float array of shape (M, V, C); copied into the buffer's own storage.
            timestamp_ms: capture time in monotonic milliseconds; must increase strictly.
            index: the source's frame index (carried into prediction messages).

        Raises:
            ValueError: wrong frame shape, a timestamp not after the previous one, or a frame index (when >= 0)
                before the previous one (the caller restarts the buffer, as for time going backwards).
        """
        if frame.shape != self._frames.shape[1:]:
            raise ValueError(f"expected a frame of shape (M, V, C) = {self._frames.shape[1:]}, got {frame.shape}")
        if self._count and timestamp_ms <= self._times[self._start + self._count - 1]:
            raise ValueError(f"timestamps must increase strictly: got {timestamp_ms} ms after "
                             f"{self._times[self._start + self._count - 1]} ms")
        previous = self._indices[self._start + self._count - 1] if self._count else -1
        if 0 <= index < previous:  # a restarted source on a clock that went on: its frames would make windows whose
            # first frame index is after their last (invalid predictions, dropped by subscribers) until T frames
            raise ValueError(f"frame indices must not decrease: got frame {index} after frame {previous}")
        slot = self._next
        self._frames[slot] = frame
        self._times[slot] = self._times[slot + self.capacity] = timestamp_ms
        self._indices[slot] = self._indices[slot + self.capacity] = index
        self._next = (slot + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1

    # ------------------------------------------------------------------ reading
    def ready(self, length: int, fps: float | None = None) -> bool:
        """Whether a window of ``length`` frames can be made without inventing time before the first frame.

        Without ``fps``: at least ``length`` frames are stored. With ``fps``: the stored frames span
        ``(length - 1) / fps`` seconds, or the buffer is full (the input runs faster than it can hold).
        """
        if fps is None:
            return self._count >= length
        if self._count == 0:
            return False
        return self._count == self.capacity or self.span_ms() >= (length - 1) * 1000.0 / fps - 1e-6

    def window(self, length: int, fps: float | None = None, out: np.ndarray | None = None,
               interpolation: Interpolation = "linear") -> np.ndarray:
        """The newest ``length`` frames as a (C, T, V, M) float32 window, written into ``out``.

        Args:
            length: T, frames in the window.
            fps: resample to this rate on the timestamps, ending at the newest frame; None takes the last T frames
                as stored. Sample times before the oldest frame hold the oldest frame.
            out: preallocated (C, T, V, M) float32 array to write into; a fresh one is made when None.
            interpolation: ``linear`` between the two frames around each sample time, or ``nearest``.

        Returns:
            ``out``.

        Raises:
            ValueError: empty buffer, bad ``out`` shape or dtype, unknown interpolation, or (without fps) fewer
                than T frames stored.
        """
        M, V, C = self._frames.shape[1:]
        if out is None:
            out = np.empty((C, length, V, M), dtype=np.float32)
        elif out.shape != (C, length, V, M) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 of shape (C, T, V, M) = {(C, length, V, M)}, "
                             f"got {out.dtype} {out.shape}")
        if interpolation not in ("linear", "nearest"):
            raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
        if self._count == 0:
            raise ValueError("the ring buffer is empty: push frames before asking for a window")
        dst = out.transpose(1, 3, 2, 0)  # (T, M, V, C) view of out
        if fps is None:
            if self._count < length:
                raise ValueError(f"a window of {length} frames needs {length} stored frames, have {self._count}")
            slots = (np.arange(self._next - length, self._next) % self.capacity)
            np.take(self._frames, slots, axis=0, out=self._scratch_for(length)[0])
            dst[...] = self._scratch[length][0]
            return out
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self._resample(length, fps, dst, interpolation)
        return out

    def _scratch_for(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        if length not in self._scratch:
            shape = (length,) + self._frames.shape[1:]
            self._scratch[length] = (np.empty(shape, np.float32), np.empty(shape, np.float32))
        return self._scratch[length]

    def _resample(self, length: int, fps: float, dst: np.ndarray, interpolation: Interpolation) -> None:
        """Fill ``dst`` (T, M, V, C) with frames sampled every 1/fps s, ending at the newest frame."""
        start, count = self._start, self._count
        times = self._times[start:start + count]  # contiguous, increasing
        period = 1000.0 / fps
        t_samples = times[-1] - period * np.arange(length - 1, -1, -1, dtype=np.float64)
        right = np.searchsorted(times, t_samples, side="left")  # first stored time >= sample time
        np.clip(right, 0, count - 1, out=right)
        left = np.maximum(right - 1, 0)
        t_left, t_right = times[left], times[right]
        gap = t_right - t_left
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(gap > 0, (t_samples - t_left) / gap, 1.0)
        np.clip(weight, 0.0, 1.0, out=weight)
        if interpolation == "nearest":
            weight = np.where(weight >= 0.5, 1.0, 0.0)
        else:  # do not invent motion across a gap: hold the nearer frame
            too_far = gap > self.max_gap_ms
            weight[too_far] = np.where(weight[too_far] >= 0.5, 1.0, 0.0)
        a, b = self._scratch_for(length)
        slots_left = (start + left) % self.capacity
        slots_right = (start + right) % self.capacity
        np.take(self._frames, slots_left, axis=0, out=a)
        np.take(self._frames, slots_right, axis=0, out=b)
        b -= a
        b *= weight.astype(np.float32)[:, None, None, None]
        a += b
        dst[...] = a

    def window_frames(self, length: int, fps: float | None = None) -> tuple[int, int, float, float]:
        """(first frame index, last frame index, first timestamp, last timestamp) covered by that window."""
        if self._count == 0:
            raise ValueError("the ring buffer is empty")
        s, n = self._start, self._count
        times, idx = self._times[s:s + n], self._indices[s:s + n]
        if fps is None:
            k = max(n - length, 0)
        else:
            t_first = times[-1] - (length - 1) * 1000.0 / fps + 1e-6  # tolerate float error on exact times
            k = int(np.searchsorted(times, t_first, side="right")) - 1
            k = min(max(k, 0), n - 1)
        return int(idx[k]), int(idx[-1]), float(times[k]), float(times[-1])
