"""Kinetics-skeleton -> `{out}/kinetics/{split}_{data.npy,label.pkl,meta.json}` (spec §4.6).

As `tools/kinetics_gendata.py`: videos whose label record says `has_skeleton: false` are left out; per frame the
first 5 people are read, x, y become x - 0.5 and -(y - 0.5), x and y are zeroed where the score is 0, and the 2
people with the largest summed score *of that frame* are kept (OpenPose has no identities across frames). Unlike
the reference, frames are placed relative to the smallest `frame_index` (files starting at 1 keep frame 0).
"""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import numpy as np

from sttr.model.preprocess import PreprocessSpec

from ..labels import load_label_names
from ..readers.kinetics import read_kinetics_labels, read_kinetics_video
from .runner import SampleTask, SplitSummary, generate_split

__all__ = ["kinetics_window", "track_people", "load_kinetics_sample", "plan_kinetics", "generate_kinetics",
           "split_from_label_file"]

log = logging.getLogger(__name__)


def track_people(joints: np.ndarray, max_dist: float = 0.15, max_gap: int = 10) -> np.ndarray:
    """Link per-frame persons into tracks by the nearest centroid, greedily, frame by frame.

    Args:
        joints: (T, P, V, 3) x, y, score per frame, persons in detector order (a person is present where any joint
            has a score > 0).
        max_dist: Largest centroid move (image units) between two detections of the same track.
        max_gap: Frames a track may go undetected and still be continued.

    Returns:
        (T, K, V, 3) float32, one slot per track, in order of first appearance.
    """
    frames, people = joints.shape[:2]
    tracks: list[tuple[np.ndarray, int]] = []  # (last centroid, last frame seen)
    assign: list[tuple[int, int, int]] = []  # (frame, person, track)
    for t in range(frames):
        seen = [p for p in range(people) if np.any(joints[t, p, :, 2] > 0)]
        cents = {p: joints[t, p, joints[t, p, :, 2] > 0, :2].mean(axis=0) for p in seen}
        pairs = sorted((float(np.linalg.norm(cents[p] - c)), p, k) for p in seen
                       for k, (c, last) in enumerate(tracks) if t - last <= max_gap)
        matched: dict[int, int] = {}  # person -> track
        for dist, p, k in pairs:
            if dist > max_dist:
                break
            if p not in matched and k not in matched.values():
                matched[p] = k
        for p in seen:
            if p not in matched:
                tracks.append((cents[p], t))
                matched[p] = len(tracks) - 1
            tracks[matched[p]] = (cents[p], t)
            assign.append((t, p, matched[p]))
    out = np.zeros((frames, len(tracks), *joints.shape[2:]), dtype=np.float32)
    for t, p, k in assign:
        out[t, k] = joints[t, p]
    return out


def kinetics_window(joints: np.ndarray, persons_in: int = 5, persons_out: int = 2,
                    person_order: str = "score") -> np.ndarray:
    """Reference Kinetics transform of (T, P, 18, 3) [0, 1] x, y, score -> (3, T, 18, persons_out) float32.

    `person_order`: `score` sorts the persons of each frame by their summed score (the reference; identities may
    swap between frames); `track` links persons across frames (`track_people`) and keeps the tracks with the
    largest total score.

    The arithmetic (x - 0.5, the score sums that order the persons) is done in float64 and rounded to float32 once
    at the end, as the reference does: pass float64 joints (`read_kinetics_video(path, np.float64)`) to get its
    numbers bit for bit (float32 joints were rounded once already: x - 0.5 could differ by 1 ulp).
    """
    if person_order not in ("score", "track"):
        raise ValueError(f"person_order must be 'score' or 'track', got {person_order!r}")
    joints = joints[:, :persons_in]
    if person_order == "track":
        joints = track_people(joints)
    frames, people, num_joints, _ = joints.shape
    slots = max(people, persons_out) if person_order == "track" else persons_in
    data = np.zeros((3, frames, num_joints, slots), dtype=np.float64)
    data[:, :, :, :people] = joints.transpose(3, 0, 2, 1)
    data[0:2] -= 0.5
    data[1] = -data[1]
    data[0:2][:, data[2] == 0] = 0
    if person_order == "track":
        order = np.argsort(-data[2].sum(axis=(0, 1)), kind="stable")[:persons_out]
        return np.ascontiguousarray(data[..., order], dtype=np.float32)
    order = np.argsort(-data[2].sum(axis=1), axis=1, kind="stable")  # (T, persons_in), per frame
    data = np.take_along_axis(data, order[None, :, None, :], axis=3)
    return np.ascontiguousarray(data[..., :persons_out], dtype=np.float32)


def load_kinetics_sample(task: SampleTask, persons: int = 2, persons_in: int = 5,
                         person_order: str = "score") -> np.ndarray:
    """Raw window (3, T, 18, persons) of one per-video JSON file (T = 1 for a video without frames)."""
    video = read_kinetics_video(task.path, np.float64)  # one rounding to float32, in kinetics_window
    joints = video.joints if len(video.joints) else np.zeros((1, 0, 18, 3), np.float64)
    return kinetics_window(joints, persons_in, persons, person_order)


def split_from_label_file(path: Path) -> str | None:
    """`train` for `kinetics_train_label.json`, `test` for `..._val_...`/`..._test_...`, else None."""
    stem = Path(path).stem.lower()
    if re.search(r"train", stem):
        return "train"
    if re.search(r"val|test", stem):
        return "test"
    return None


def plan_kinetics(raw: Path, labels: Path) -> tuple[list[SampleTask], list[dict[str, str]], list[str]]:
    """Tasks for the videos of a label file; excluded (no skeleton / file absent) with reasons; unlisted files."""
    records = read_kinetics_labels(labels)
    tasks, excluded = [], []
    for video_id in sorted(records):
        rec, path = records[video_id], Path(raw) / f"{video_id}.json"
        if not rec.has_skeleton:
            excluded.append({"name": path.name, "path": str(path), "reason": "has_skeleton is false"})
        elif not path.is_file():
            excluded.append({"name": path.name, "path": str(path), "reason": "file not found"})
        else:
            tasks.append(SampleTask(path.name, str(path), rec.label_index))
    unlisted = sorted(p.name for p in Path(raw).glob("*.json") if p.stem not in records)
    if unlisted:
        log.warning("%d files in %s have no entry in %s and are ignored", len(unlisted), raw, labels)
    return tasks, excluded, unlisted


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def _warn_on_renamed_labels(labels: Path, names: list[str]) -> None:
    """Warn when the label file names a class otherwise than the label names the output will carry (a label file
    of another class list, or the wrong --label-names): the label_index is what is written."""
    records = read_kinetics_labels(labels)
    differ = {(_norm(r.label), r.label_index) for r in records.values()
              if 0 <= r.label_index < len(names) and _norm(r.label) != _norm(names[r.label_index])}
    if differ:
        label, index = sorted(differ, key=lambda d: d[1])[0]
        log.warning("%s: %d class(es) are named otherwise than in the label names used (e.g. label_index %d is %r "
                    "there and %r here); the label_index is what is written: pass --label-names FILE if these names "
                    "are not the right ones", labels, len(differ), index, label, names[index])


def generate_kinetics(raw: Path, labels: Path, out: Path, spec: PreprocessSpec, *, split: str | None = None,
                      label_names: list[str] | None = None, person_order: str = "score", workers: int = 1,
                      progress: bool = True) -> SplitSummary:
    """Generate one Kinetics split under `{out}/kinetics` from a folder of videos and its label file."""
    if spec.layout_obj.name != "openpose18":
        raise ValueError(f"Kinetics-skeleton is in the openpose18 layout; the spec says {spec.layout_obj.name!r}")
    raw, labels = Path(raw), Path(labels)
    if not raw.is_dir():
        raise FileNotFoundError(f"Kinetics-skeleton folder {raw} does not exist")
    if not labels.is_file():
        raise FileNotFoundError(f"Kinetics label file {labels} "
                                f"{'is a folder' if labels.is_dir() else 'does not exist'} (expected the JSON of "
                                "{video id: {label, label_index, has_skeleton}}, e.g. kinetics_val_label.json)")
    split = split or split_from_label_file(labels)
    if split is None:
        raise ValueError(f"cannot tell the split from {labels.name}; pass --split train|test")
    tasks, excluded, unlisted = plan_kinetics(raw, labels)
    names = label_names or load_label_names("kinetics400")
    bad = sorted({t.label for t in tasks if not 0 <= t.label < len(names)})
    if bad:
        raise ValueError(f"{labels}: label_index values {bad[:5]} are outside the {len(names)} label names")
    _warn_on_renamed_labels(labels, names)
    loader = functools.partial(load_kinetics_sample, persons=spec.persons, person_order=person_order)
    selection = {"score": "per frame, largest summed score (reference)",
                 "track": "tracked across frames, largest total score"}[person_order]
    meta = {"dataset": "kinetics", "benchmark": "kinetics", "layout": "openpose18", "label_names": names,
            "num_classes": len(names), "body_selection": selection, "unlisted": unlisted}
    return generate_split(out / "kinetics", split, tasks, loader, spec, meta=meta, excluded=excluded,
                          workers=workers, progress=progress)
