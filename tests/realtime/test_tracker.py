"""Person tracker on synthetic crossings, entries, exits and crowds."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.realtime.frame import SkeletonFrame
from sttr.realtime.tracker import EMPTY_ID, PersonTracker

V = 5


def _person(x: float, y: float = 0.0, score: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.linspace(-0.1, 0.1, V)[:, None] * np.array([[0.0, 1.0]])
    return (np.array([x, y]) + offsets).astype(np.float32), np.full(V, score, np.float32)


def _frame(t_ms: float, *people: tuple[np.ndarray, np.ndarray], index: int = 0) -> SkeletonFrame:
    if not people:
        return SkeletonFrame.empty("openpose18", V, 2, t_ms, index)
    return SkeletonFrame("openpose18", t_ms, index, np.stack([p[0] for p in people]), np.stack([p[1] for p in people]))


def _slot_x(frame: SkeletonFrame) -> list[float]:
    return [float(frame.joints[s, :, 0].mean()) for s in range(frame.num_persons)]


@pytest.mark.parametrize("y_gap", [0.0, 0.05])
def test_crossing_keeps_ids(y_gap):
    tracker = PersonTracker(max_persons=2)
    steps = 21
    xs = np.linspace(0.0, 1.0, steps)
    first = None
    for i, x in enumerate(xs):
        a, b = _person(x, 0.0), _person(1.0 - x, y_gap)
        order = (a, b) if i % 2 else (b, a)  # the estimator's person order flips every frame
        out = tracker.update(_frame(33.0 * i, *order, index=i))
        assert out.num_persons == 2
        ids = out.track_ids
        if first is None:
            first = {ids[s]: _slot_x(out)[s] < 0.5 for s in range(2)}  # id -> walks left-to-right
            a_slot = [s for s in range(2) if _slot_x(out)[s] < 0.5][0]
        # the slot that started with the left-to-right walker still holds it, with the same id
        np.testing.assert_allclose(_slot_x(out)[a_slot], x, atol=1e-6, err_msg=f"frame {i}")
        assert ids == list(first), f"ids changed at frame {i}: {ids}"


def test_slot_persists_through_a_short_gap_and_frees_after_timeout():
    tracker = PersonTracker(max_persons=2, timeout_ms=100)
    out = tracker.update(_frame(0, _person(0.2), _person(0.8)))
    ids = out.track_ids
    left_slot = int(np.argmin(_slot_x(out)))
    # the left person vanishes for 66 ms: its slot is kept (zeros, score 0), the other stays put
    out = tracker.update(_frame(33, _person(0.8)))
    assert out.track_ids == ids
    assert np.all(out.scores[left_slot] == 0) and np.all(out.joints[left_slot] == 0)
    out = tracker.update(_frame(66, _person(0.8)))
    out = tracker.update(_frame(99, _person(0.21), _person(0.8)))
    assert out.track_ids == ids and abs(_slot_x(out)[left_slot] - 0.21) < 1e-6
    # now gone for longer than the timeout: the slot is freed, and a newcomer gets a new id
    tracker.update(_frame(150, _person(0.8)))
    out = tracker.update(_frame(250, _person(0.8)))
    assert out.track_ids[left_slot] == EMPTY_ID
    out = tracker.update(_frame(283, _person(0.5), _person(0.8)))
    assert out.track_ids[left_slot] not in ids and out.track_ids[1 - left_slot] == ids[1 - left_slot]


def test_more_persons_than_slots_keeps_the_most_confident():
    tracker = PersonTracker(max_persons=2)
    out = tracker.update(_frame(0, _person(0.1, score=0.3), _person(0.5, score=0.9), _person(0.9, score=0.8)))
    assert sorted(np.round(_slot_x(out), 3)) == [0.5, 0.9]


def test_max_distance_starts_a_new_track_in_a_free_slot():
    tracker = PersonTracker(max_persons=2, max_distance=0.2)
    first = tracker.update(_frame(0, _person(0.1)))
    out = tracker.update(_frame(33, _person(0.9)))  # too far to be the same person
    assert out.track_ids[0] == first.track_ids[0] and out.scores[0].sum() == 0
    assert out.track_ids[1] not in (EMPTY_ID, first.track_ids[0])


def test_empty_frames_and_validation():
    tracker = PersonTracker(max_persons=2)
    out = tracker.update(_frame(0))
    assert out.num_persons == 2 and out.track_ids == [EMPTY_ID, EMPTY_ID]
    with pytest.raises(ValueError, match="max_persons"):
        PersonTracker(max_persons=0)


def test_source_ids_are_kept_in_their_slots():
    # world landmarks are hip-centred, so a tracking source sends ids; centroids alone could not tell them apart
    tracker = PersonTracker(max_persons=2)
    a, b = _person(0.0), _person(0.0)
    frame = SkeletonFrame("openpose18", 0, 0, np.stack([a[0], b[0]]), np.stack([a[1], b[1] * 0.5]), track_ids=[5, 9])
    out = tracker.update(frame)
    assert out.track_ids == [5, 9]
    swapped = SkeletonFrame("openpose18", 33, 1, np.stack([b[0] + 1, a[0]]), np.stack([b[1], a[1]]),
                            track_ids=[9, 5])
    out = tracker.update(swapped)
    assert out.track_ids == [5, 9] and tracker.last_assignment == {0: 1, 1: 0}
    np.testing.assert_allclose(out.joints[1], b[0] + 1)
    # a tracker's own output (empty slots have id -1) can be fed again
    again = PersonTracker(max_persons=2).update(PersonTracker(max_persons=2).update(_frame(0, _person(0.3))))
    assert again.track_ids[0] >= 0 and again.track_ids[1] == EMPTY_ID
    ignore = PersonTracker(max_persons=2, use_source_ids=False).update(frame)
    assert set(ignore.track_ids) == {0, 1}


def test_frames_stamped_microseconds_apart_keep_their_ids():
    """Files read as fast as possible arrive with near-equal timestamps; jitter must not become velocity."""
    tracker = PersonTracker(max_persons=2, max_distance=0.3)
    rng = np.random.default_rng(0)
    ids = None
    t = 0.0
    for i in range(60):
        t += 0.001 if i % 2 else 40.0  # bursts: two frames read back to back, then a pause
        jitter = rng.normal(0, 0.01, 2)
        out = tracker.update(_frame(t, _person(0.0 + jitter[0]), _person(1.0 + jitter[1]), index=i))
        xs = _slot_x(out)
        if ids is None:
            ids = list(out.track_ids)
            order = [int(x > 0.5) for x in xs]
        assert list(out.track_ids) == ids
        assert [int(x > 0.5) for x in xs] == order
