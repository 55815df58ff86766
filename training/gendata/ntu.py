"""NTU RGB+D 60/120 -> `{out}/{benchmark}/{train,test}_{data.npy,label.pkl,meta.json}`.

Every `.skeleton` file under the raw folders is planned by its name (split, label) before anything is read;
samples of the official missing-skeleton list are left out; each remaining file is read, its two bodies with the
largest motion energy are kept (spec §4.2), it is cut/padded to the window and normalised by the `PreprocessSpec`.
A truncated or malformed file is skipped, counted and listed. With a complete dataset the split sizes are checked
against the commonly reported ones (spec §4.3).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sttr.model.preprocess import PreprocessSpec

from ..labels import NTU120_MISSING_LIST, load_label_names
from ..readers.missing import read_missing_list
from ..readers.ntu import parse_sample_name, read_skeleton
from .bodies import select_bodies
from .runner import Reuse, SampleTask, SplitSummary, generate_split
from .splits import EXPECTED_SIZES, FULL_DATASET_SIZES, ntu_in_dataset, ntu_split

__all__ = ["NtuPlan", "plan_ntu", "load_ntu_sample", "generate_ntu"]

log = logging.getLogger(__name__)


@dataclass
class NtuPlan:
    """Samples per split, and the files left out before reading (with reasons)."""

    splits: dict[str, list[SampleTask]]
    excluded: list[dict[str, str]] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    num_files: int = 0


def _find_files(raw_dirs: list[Path]) -> list[Path]:
    files = []
    for folder in raw_dirs:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"raw NTU folder {folder} does not exist")
        files += sorted(Path(folder).rglob("*.skeleton"))
    return files


def plan_ntu(raw_dirs: list[Path], dataset: str, benchmark: str, missing: set[str]) -> NtuPlan:
    """Assign every `.skeleton` file of the dataset to `train`/`test` by its name; nothing is read yet."""
    plan = NtuPlan({"train": [], "test": []})
    seen: dict[str, Path] = {}
    for path in _find_files(raw_dirs):
        try:
            sid = parse_sample_name(path.name)
        except ValueError as err:
            plan.ignored.append({"name": path.name, "path": str(path), "reason": str(err)})
            continue
        if not ntu_in_dataset(sid, dataset):
            plan.ignored.append({"name": path.name, "path": str(path), "reason": f"not part of {dataset}"})
            continue
        if sid.name in seen:
            plan.ignored.append({"name": path.name, "path": str(path), "reason": f"duplicate of {seen[sid.name]}"})
            continue
        seen[sid.name] = path
        plan.num_files += 1
        if sid.name in missing:
            plan.excluded.append({"name": path.name, "path": str(path), "reason": "in the missing-skeleton list"})
            continue
        info = (("setup", sid.setup), ("camera", sid.camera), ("subject", sid.subject),
                ("replication", sid.replication))
        plan.splits[ntu_split(sid, dataset, benchmark)].append(SampleTask(path.name, str(path), sid.label, info))
    for tasks in plan.splits.values():
        tasks.sort(key=lambda t: t.name)
    return plan


def load_ntu_sample(task: SampleTask, persons: int = 2, max_slots: int | None = 4,
                    legacy: bool = False) -> np.ndarray:
    """Raw window (3, F, 25, persons) float32 of one file: the bodies with the largest motion energy.

    The energies are computed on the file's float64 values, as the reference; `legacy`: empty frames as the
    reference tells them (`select_bodies`).

    Raises:
        SkeletonFormatError: a truncated or malformed file.
        ValueError: a file without any body.
    """
    skeleton = read_skeleton(task.path, dtype=np.float64)
    if skeleton.num_frames == 0 or not np.any(skeleton.joints):
        raise ValueError(f"{task.path}: no body in any of its {skeleton.num_frames} frames")
    bodies = select_bodies(skeleton.joints, persons, max_slots, legacy)  # (F, M, V, C) float32
    return np.ascontiguousarray(bodies.transpose(3, 0, 2, 1))


def check_split_sizes(dataset: str, benchmark: str, plan: NtuPlan, summaries: dict[str, SplitSummary]) -> list[str]:
    """Warnings when a complete dataset gives split sizes other than the reported ones (spec §4.3)."""
    if plan.num_files != FULL_DATASET_SIZES[dataset]:
        log.info("%d of %d %s samples present; split sizes not checked", plan.num_files,
                 FULL_DATASET_SIZES[dataset], dataset)
        return []
    warnings = []
    for split, expected in EXPECTED_SIZES[(dataset, benchmark)].items():
        got = summaries[split].num_samples
        if got != expected:
            warnings.append(f"{dataset} {benchmark} {split}: {got} samples, but {expected} are reported for the "
                            f"complete dataset (check the missing-skeleton list and skipped files)")
    for text in warnings:
        log.warning("!!! SPLIT SIZE MISMATCH: %s", text)
    return warnings


def _class_names(given: list[str] | None, dataset: str) -> list[str]:
    """The dataset's class names, one per action (A1..A60 or A1..A120): the model gets one output per name. The
    NTU-120 list (e.g. the NTU README's) also names NTU-60's actions: its first 60."""
    count = {"ntu60": 60, "ntu120": 120}[dataset]
    names = list(given) if given else load_label_names(dataset)
    if len(names) == 120 and count == 60:
        log.info("--label-names lists NTU-120's 120 actions; ntu60 uses the first 60")
        return names[:60]
    if len(names) != count:
        raise ValueError(f"--label-names has {len(names)} class names; {dataset} has {count} actions (A1..A{count})")
    return names


def generate_ntu(raw_dirs: list[Path], out: Path, dataset: str, benchmark: str, spec: PreprocessSpec, *,
                 missing_list: Path | None = NTU120_MISSING_LIST, label_names: list[str] | None = None,
                 splits: tuple[str, ...] = ("train", "test"), workers: int = 1, max_slots: int | None = 4,
                 progress: bool = True, reuse_from: list[Path] = ()) -> tuple[dict[str, SplitSummary], NtuPlan,
                                                                              list[str]]:
    """Generate NTU-60/120 splits under `{out}/{benchmark}`; returns summaries, the plan and size warnings.

    `reuse_from`: folders of other benchmarks just generated from the same files with the same spec; their
    samples are copied instead of read and normalised again.
    """
    if spec.layout_obj.name != "ntu25":
        raise ValueError(f"NTU data is in the ntu25 layout; the spec says {spec.layout_obj.name!r}")
    missing = read_missing_list(missing_list) if missing_list is not None else set()
    plan = plan_ntu([Path(d) for d in raw_dirs], dataset, benchmark, missing)
    if plan.num_files == 0:
        raise FileNotFoundError(f"no {dataset} .skeleton files found under {', '.join(map(str, raw_dirs))}")
    names = _class_names(label_names, dataset)
    loader = functools.partial(load_ntu_sample, persons=spec.persons, max_slots=max_slots,
                               legacy=spec.pre_normalization == "legacy")
    meta = {"dataset": dataset, "benchmark": benchmark, "layout": spec.layout_obj.name, "label_names": names,
            "num_classes": len(names), "body_selection": f"motion energy, {max_slots or 'all'} slots considered",
            "missing_list": str(missing_list) if missing_list else None}
    summaries = {}
    reuse = Reuse([Path(f) for f in reuse_from]) if reuse_from else None
    for split in splits:
        excluded = [e for e in plan.excluded if ntu_split(parse_sample_name(e["name"]), dataset, benchmark) == split]
        summaries[split] = generate_split(Path(out) / benchmark, split, plan.splits[split], loader, spec, meta=meta,
                                          excluded=excluded, workers=workers, progress=progress,
                                          reuse=reuse)
    warnings = check_split_sizes(dataset, benchmark, plan, summaries) if set(splits) == {"train", "test"} else []
    return summaries, plan, warnings
