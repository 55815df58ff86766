"""Tiny generated datasets for the training tests (seconds, CPU)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from sttr.model.skeleton import get_layout


def make_dataset(root: Path, *, layout: str = "ntu25", n_train: int = 24, n_test: int = 12, num_classes: int = 3,
                 T: int = 16, M: int = 2, C: int = 3, seed: int = 0, easy: bool = True, subjects: int = 4) -> Path:
    """Write train/test splits: each class moves one joint along one axis (easy) or is noise (not easy)."""
    lay = get_layout(layout)
    V = lay.num_joints
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = [i % num_classes for i in range(n)]
        data = rng.normal(0, 0.1, size=(n, C, T, V, M)).astype(np.float32)
        if easy:
            for i, c in enumerate(labels):
                data[i, c % C, :, c % V, 0] += np.linspace(0, 2, T, dtype=np.float32)
        if M > 1:
            data[:, :, :, :, 1:] = 0  # no second person
        data[: n // 3, :, T - 4:] = 0  # a few shorter clips (zero tail)
        names = [f"{split}_{i:03d}" for i in range(n)]
        meta = {"layout": lay.name, "label_names": [f"class{c}" for c in range(num_classes)],
                "subjects": [i % subjects + 1 for i in range(n)], "cameras": [1] * n,
                "channels": list(lay.channels) if C == lay.num_channels else None,
                "preprocess": {"layout": lay.name, "window": T}}
        np.save(root / f"{split}_data.npy", data)
        with open(root / f"{split}_label.pkl", "wb") as f:
            pickle.dump((names, labels), f)
        (root / f"{split}_meta.json").write_text(json.dumps(meta))
    return root
