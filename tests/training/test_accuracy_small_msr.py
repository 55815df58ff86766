"""benchmarks/accuracy_small.py: MSR Action3D runs P1, P2 and P3 (the 10 splits), P3 is summarised as one mean."""
import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy_small.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("accuracy_small", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_msr_runs_every_protocol_and_p3_is_the_mean_of_its_ten_splits(bench):
    runs = bench._runs(["msr_action3d"], folds=[])
    assert [b for _, g, b in runs if g == "P1"] == ["as1", "as2", "as3"]
    assert [b for _, g, b in runs if g == "P2"] == ["cs"]
    assert [b for _, g, b in runs if g == "P3"] == [f"split_{k}" for k in range(1, 11)]
    results = [{"dataset": "msr_action3d", "group": "P3", "benchmark": f"split_{k}", "preset": "s-tr-bones",
                "top1": 90.0 + (k % 2), "num_test": 270} for k in range(1, 11)]
    (row,) = bench._summary(results)
    assert row["protocol"] == "msr_action3d/P3" and row["ours_mean_top1"] == pytest.approx(90.5)
    assert row["published_best"] == bench.PUBLISHED["msr_action3d/P3"][0] and row["beats_published"] is False


def test_reused_runs_report_their_logged_training_time(bench, tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,lr,time_s\n0,0.1,1.5\n1,0.1,2.5\n")
    assert bench._logged_train_s(log) == pytest.approx(4.0)
    assert bench._logged_train_s(tmp_path / "missing.csv") == 0.0


def test_seeds_of_one_stream_are_fused_into_an_ensemble(bench, tmp_path):
    import pickle

    import numpy as np

    labels = tmp_path / "labels"
    labels.mkdir()
    with open(labels / "test_label.pkl", "wb") as f:
        pickle.dump((["a", "b"], [0, 1]), f)
    scores = {1: {"a": [2.0, 0.0], "b": [1.0, 0.0]},  # seed 1: a right, b wrong (by 1)
              2: {"a": [0.0, 1.0], "b": [0.0, 3.0]}}  # seed 2: a wrong (by 1), b right; summed: both right
    runs = []
    for seed, table in scores.items():
        path = tmp_path / f"scores{seed}.pkl"
        with open(path, "wb") as f:
            pickle.dump({k: np.asarray(v, np.float32) for k, v in table.items()}, f)
        runs.append({"dataset": "msr_action3d", "benchmark": "cs", "preset": "s-tr-bones", "seed": seed,
                     "top1": 50.0, "top5": 100.0, "num_test": 2, "train_s": 1.0, "scores": str(path),
                     "labels": str(labels)})
    fused = bench._fuse(runs)
    assert fused["top1"] == pytest.approx(100.0) and fused["preset"] == "s-tr-bones x2 seeds"
    assert fused["seed"] == [1, 2] and fused["train_s"] == pytest.approx(2.0)
