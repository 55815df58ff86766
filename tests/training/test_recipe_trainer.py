"""The trainer runs the recipe as configured: the learning rate of each epoch in log.csv is the reference's
(base_lr * 0.1 ** steps passed), weight decay covers every parameter as main.py's SGD does, and the checkpoint
chosen on validation (not the last one) is the one tested."""
from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest
import torch

from sttr.training.config import TrainConfig
from sttr.training.trainer import Trainer

from ._data import make_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), layout="natops8", n_train=12, n_test=6, T=8, M=1, subjects=3)


def _cfg(root, work):
    return TrainConfig.from_dict({
        "model": {"preset": "nano"}, "work_dir": str(work), "progress": False, "tensorboard": False,
        "data": {"root": str(root), "batch_size": 3, "num_workers": 0, "val_fraction": 0.25},
        "optim": {"epochs": 4, "milestones": [1, 3], "lr": 0.1, "weight_decay": 1e-4}})


def test_lr_per_epoch_weight_decay_and_the_tested_checkpoint(root, tmp_path, monkeypatch):
    # scripted validation: epochs 2 and 4 tie on top-1, epoch 2 has the lower loss -> epoch 2 is chosen, not the last
    scripted = iter([(0.2, 1.0), (0.6, 0.9), (0.4, 0.5), (0.6, 1.0)])
    snapshots = []

    def validate(self):
        snapshots.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        top1, loss = next(scripted)
        return {"val_loss": loss, "val_top1": top1, "val_top5": 1.0}

    monkeypatch.setattr(Trainer, "validate", validate)
    trainer = Trainer(_cfg(root, tmp_path))
    groups = trainer.optimizer.param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4  # main.py: SGD(model.parameters(), wd) on all
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in trainer.model.parameters()}
    assert (groups[0]["momentum"], groups[0]["nesterov"]) == (0.9, True)
    result = trainer.fit()

    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    lrs = [float(r["lr"]) for r in rows]
    np.testing.assert_allclose(lrs, [0.1 * 0.1 ** np.sum(e >= np.array([1, 3])) for e in range(4)], rtol=1e-12)

    from sttr.model.checkpoint import load_checkpoint
    from sttr.training.feeder import SkeletonFeeder

    assert result["best_epoch"] == 2
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt.meta["epoch"] == 2 and ckpt.meta["selection"] == "validation top-1"
    model = ckpt.build_model().eval()
    for key, value in snapshots[1].items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    assert any(not torch.equal(snapshots[1][k], v) for k, v in trainer.model.state_dict().items())  # not the last
    test = SkeletonFeeder(root, "test")
    with torch.no_grad():
        expect = model(torch.stack([test[i][0] for i in range(len(test))])).numpy()
    with open(tmp_path / "test" / "test_scores.pkl", "rb") as f:
        scores = pickle.load(f)
    got = np.stack([scores[n] for n in test.names])
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
