"""Training-set generation: NTU RGB+D 60/120 and Kinetics-skeleton -> memory-mappable (N, C, T, V, M) arrays.

Output per split (`train`, `test`) under `{out}/{benchmark}`: `{split}_data.npy` float32, `{split}_label.pkl`
= (names, labels) as the reference tools write it, and `{split}_meta.json` (layout, preprocess spec, label names,
per-sample ids, counts, skipped files).
"""
from .kinetics import generate_kinetics
from .ntu import generate_ntu
from .runner import SampleTask, SplitSummary, generate_split

__all__ = ["generate_ntu", "generate_kinetics", "generate_split", "SampleTask", "SplitSummary"]
