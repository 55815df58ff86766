"""Validation-only tuning on MSR Action3D (how configs/small_msr_action3d.yaml was chosen; see msr_action3d.md).

For each fold of held-out TRAINING subjects, train on the other training subjects of a benchmark (default `cs`, the
P2 training subjects 1,3,5,7,9), score the held-out fold with the LAST epoch (as accuracy_small.py does), per stream
and fused (summed logits). The test split is never read (`test_at_end=false`). One thread:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/results/msr_action3d_validation.py --tag ep80 \
        --folds "1;5;9" --streams s-tr-bones --set optim.epochs=80 optim.lr=0.05

Appends one JSON line per call to $MSR_WORK/tune_results.jsonl (MSR_WORK default /tmp/msr_work; MSR_DATA: the
MSRAction3D folder).

An ensemble of finished trials (e.g. the same settings with seeds 1, 2, 3) is scored from their saved validation
logits, summed per sample as accuracy_small.py --seeds fuses test scores:

    python benchmarks/results/msr_action3d_validation.py --tag ens3 --fuse loso_ep80_lr05 loso_ep80_lr05_seed2 \
        loso_ep80_lr05_seed3
"""
import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
W = Path(os.environ.get("MSR_WORK", "/tmp/msr_work"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tag", required=True)
    p.add_argument("--bench", default="cs")
    p.add_argument("--folds", default="1,3;7,9")
    p.add_argument("--streams", nargs="+", default=["s-tr-bones"])
    p.add_argument("--set", nargs="*", default=[], dest="overrides")
    p.add_argument("--fuse", nargs="+", metavar="TAG", help="score the ensemble of these finished trials instead")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.fuse:
        return _fuse(a)
    from sttr.training.config import load_config
    from sttr.training.datasets import generate_msr_action3d
    from sttr.training.evaluate import predict
    from sttr.training.trainer import Trainer

    base = load_config(REPO / "configs/small_msr_action3d.yaml", a.overrides)
    T = base.data.window
    root = W / "data" / f"T{T}b"
    if not (root / a.bench / "train_data.npy").is_file():
        raw = os.environ.get("MSR_DATA", str(REPO.parent / "shared" / "data" / "small" / "MSRAction3D"))
        generate_msr_action3d(raw, root, window=T, bones=True, protocols=[a.bench])
    folds = [[int(s) for s in f.split(",")] for f in a.folds.split(";")]
    per_stream = {s: [] for s in a.streams}
    labels_all, t0 = [], time.time()
    for fold in folds:
        labels = None
        for stream in a.streams:
            wd = W / "tune" / a.tag / f"{a.bench}_v{'-'.join(map(str, fold))}_{stream}"
            cfg = load_config(REPO / "configs/small_msr_action3d.yaml",
                              [f"data.root={root / a.bench}", f"work_dir={wd}", f"data.val_subjects={fold}",
                               "test_at_end=false", "eval_interval=100000", f"model.preset={stream}", *a.overrides])
            tr = Trainer(cfg)
            tr.fit()
            _, logits, lab = predict(tr.model, tr._loader(tr.val_set, train=False), tr.device)
            per_stream[stream].append(logits)
            labels = lab
        labels_all.append(labels)
    y = np.concatenate(labels_all)
    res = {"tag": a.tag, "bench": a.bench, "folds": a.folds, "overrides": a.overrides, "n_val": int(len(y)),
           "minutes": round((time.time() - t0) / 60, 1)}
    for s, parts in per_stream.items():
        L = np.concatenate(parts)
        res[s] = round(100 * float((L.argmax(1) == y).mean()), 2)
        res[s + "_per_fold"] = [round(100 * float((P.argmax(1) == yy).mean()), 2) for P, yy in zip(parts, labels_all)]
    if len(a.streams) > 1:
        F = sum(np.concatenate(parts) for parts in per_stream.values())
        res["fused"] = round(100 * float((F.argmax(1) == y).mean()), 2)
    np.savez(W / "tune" / a.tag / f"{a.bench}_val_logits.npz", y=y,
             **{s: np.concatenate(v) for s, v in per_stream.items()})
    print(json.dumps(res))
    with open(W / "tune_results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")


def _fuse(a):
    """Summed validation logits of finished trials (same bench, folds and samples), per stream; `TAG:STREAM` entries
    fuse different streams (e.g. S-TR seeds with an AGCN seed) into one sum, reported as `mixed`."""
    if any(":" in t for t in a.fuse):
        pairs = [t.split(":", 1) if ":" in t else (t, a.streams[0]) for t in a.fuse]
        parts = [np.load(W / "tune" / tag / f"{a.bench}_val_logits.npz") for tag, _ in pairs]
        y = parts[0]["y"]
        if any(not np.array_equal(p["y"], y) for p in parts):
            raise SystemExit("the trials were not scored on the same validation samples")
        single = [round(100 * float((p[s].argmax(1) == y).mean()), 2) for p, (_, s) in zip(parts, pairs)]
        fused = sum(p[s] for p, (_, s) in zip(parts, pairs))
        res = {"tag": a.tag, "bench": a.bench, "fused_tags": a.fuse, "n_val": int(len(y)), "mixed_single": single,
               "mixed": round(100 * float((fused.argmax(1) == y).mean()), 2)}
        print(json.dumps(res))
        with open(W / "tune_results.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
        return 0
    parts = [np.load(W / "tune" / tag / f"{a.bench}_val_logits.npz") for tag in a.fuse]
    y = parts[0]["y"]
    if any(not np.array_equal(p["y"], y) for p in parts):
        raise SystemExit("the trials were not scored on the same validation samples")
    res = {"tag": a.tag, "bench": a.bench, "fused_tags": a.fuse, "n_val": int(len(y))}
    for s in a.streams:
        single = [round(100 * float((p[s].argmax(1) == y).mean()), 2) for p in parts]
        res[s + "_single"] = single
        res[s + "_single_mean"] = round(float(np.mean(single)), 2)
        res[s] = round(100 * float((sum(p[s] for p in parts).argmax(1) == y).mean()), 2)
    print(json.dumps(res))
    with open(W / "tune_results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
