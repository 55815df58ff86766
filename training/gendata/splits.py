"""NTU RGB+D benchmark splits (spec §4.3) and the commonly reported split sizes used as a sanity check."""
from __future__ import annotations

from sttr.training.readers.ntu import NtuSampleId

__all__ = ["BENCHMARKS", "NTU60_XSUB_TRAIN_SUBJECTS", "NTU120_XSUB_TRAIN_SUBJECTS", "EXPECTED_SIZES",
           "FULL_DATASET_SIZES", "ntu_split", "ntu_in_dataset"]

NTU60_XSUB_TRAIN_SUBJECTS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS | frozenset({
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103})
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
# Split sizes after removing the official missing-skeleton samples (spec §4.3; not in the reference repo).
EXPECTED_SIZES = {
    ("ntu60", "xsub"): {"train": 40091, "test": 16487},
    ("ntu60", "xview"): {"train": 37646, "test": 18932},
    ("ntu120", "xsub"): {"train": 63026, "test": 50919},
    ("ntu120", "xset"): {"train": 54468, "test": 59477},
}
# Number of `.skeleton` files of the complete dataset (missing-skeleton samples included).
FULL_DATASET_SIZES = {"ntu60": 56880, "ntu120": 114480}


def ntu_in_dataset(sample: NtuSampleId, dataset: str) -> bool:
    """True when the sample belongs to the dataset (NTU-60: setups 1-17 and actions 1-60)."""
    if dataset == "ntu60":
        return sample.setup <= 17 and sample.action <= 60
    if dataset == "ntu120":
        return True
    raise ValueError(f"unknown NTU dataset {dataset!r}; expected ntu60 or ntu120")


def ntu_split(sample: NtuSampleId, dataset: str, benchmark: str) -> str:
    """`train` or `test` for a sample under a benchmark (xsub/xview for NTU-60, xsub/xset for NTU-120)."""
    if benchmark not in BENCHMARKS.get(dataset, ()):
        raise ValueError(f"unknown benchmark {benchmark!r} for {dataset}; expected one of "
                         f"{BENCHMARKS.get(dataset, ())}")
    if benchmark == "xsub":
        subjects = NTU60_XSUB_TRAIN_SUBJECTS if dataset == "ntu60" else NTU120_XSUB_TRAIN_SUBJECTS
        train = sample.subject in subjects
    elif benchmark == "xview":
        train = sample.camera in (2, 3)
    else:  # xset
        train = sample.setup % 2 == 0
    return "train" if train else "test"
