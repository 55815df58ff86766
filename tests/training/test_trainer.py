"""Trainer: exact resume, loss falls, NaN stops cleanly, the validation-chosen checkpoint is the one tested."""
import pickle

import pytest
import torch

from sttr.training.config import TrainConfig
from sttr.training.state import load_state
from sttr.training.trainer import Trainer, TrainingDiverged

from ._data import make_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), layout="natops8", n_train=12, n_test=6, T=8, M=1, subjects=3)


def _cfg(root, work, **over):
    d = {"model": {"preset": "nano"}, "work_dir": str(work), "progress": False, "tensorboard": False,
         "data": {"root": str(root), "batch_size": 3, "num_workers": 0, "val_fraction": 0.25},
         "optim": {"epochs": 2, "milestones": [1], "lr": 0.05, "accumulate": 2},
         "augment": {"rotate": 10, "scale": 0.1, "mirror": 0.5, "crop": [0.7, 1.0]}}
    for key, value in over.items():
        section, name = key.split("__")
        d[section][name] = value
    return TrainConfig.from_dict(d)


def _params(path):
    return load_state(path)["model"]


def test_interrupted_and_resumed_run_reaches_the_identical_state(root, tmp_path):
    Trainer(_cfg(root, tmp_path / "a")).fit()
    Trainer(_cfg(root, tmp_path / "b")).fit(max_epochs=1)
    assert load_state(tmp_path / "b" / "last.pt")["epoch"] == 1
    Trainer(_cfg(root, tmp_path / "b"), resume=True).fit()
    a, b = _params(tmp_path / "a" / "last.pt"), _params(tmp_path / "b" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa, sb = load_state(tmp_path / "a" / "last.pt"), load_state(tmp_path / "b" / "last.pt")
    assert sa["epoch"] == sb["epoch"] == 2 and sa["best"] == sb["best"]
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 3  # header + 2 epochs, no duplicates


def test_resume_without_state_names_the_file(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt"):
        Trainer(_cfg(root, tmp_path), resume=True)


def test_resume_refuses_a_changed_setting_and_names_it(root, tmp_path, caplog):
    """A resumed run is the same run: a new learning rate would apply in part, and config.yaml would lie."""
    Trainer(_cfg(root, tmp_path)).fit(max_epochs=1)
    with pytest.raises(ValueError, match=r"cannot resume .*last.pt: this config changes optim.lr \(0.05 -> 0.01\), "
                                         r"seed \(1 -> 3\); resume with the run's settings"):
        Trainer(TrainConfig.from_dict({**_cfg(root, tmp_path, optim__lr=0.01).to_dict(), "seed": 3}), resume=True)
    # where and how it runs may change; more epochs too, with a warning
    more = TrainConfig.from_dict({**_cfg(root, tmp_path, optim__epochs=3).to_dict(), "threads": 1})
    with caplog.at_level("WARNING"):
        Trainer(more, resume=True)
    assert "resuming with optim.epochs 3 instead of 2" in caplog.text


def test_resume_with_a_dataset_of_other_classes_is_one_line(root, tmp_path):
    from ._data import make_dataset

    Trainer(_cfg(root, tmp_path / "run")).fit(max_epochs=1)
    other = make_dataset(tmp_path / "other", layout="natops8", n_train=12, n_test=6, T=8, M=1, subjects=3,
                         num_classes=5)
    with pytest.raises(ValueError, match=r"last.pt does not fit this run's model \(5 classes, 3 channels\): "
                                         r".*size mismatch"):
        Trainer(_cfg(other, tmp_path / "run"), resume=True)


def test_a_bones_preset_on_joints_only_data_is_refused(root, tmp_path):
    cfg = TrainConfig.from_dict({**_cfg(root, tmp_path).to_dict(), "model": {"preset": "s-tr-bones"}})
    with pytest.raises(ValueError, match=r"preset 's-tr-bones' takes joints \+ bones \(6 channels\); .* has 3 "
                                         r"\(x, y, z\): generate the data with bones merged"):
        Trainer(cfg)


def test_loss_falls_on_an_easy_task(tmp_path):
    # 48 samples (6 steps an epoch): with fewer, a nano model's per-epoch loss jumps around by a factor of 3
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=48, n_test=6, T=8, M=1, subjects=3)
    cfg = _cfg(root, tmp_path / "w", optim__epochs=8, optim__milestones=[], optim__accumulate=1,
               data__val_fraction=0.0, data__batch_size=8, optim__lr=0.05)
    cfg.augment = type(cfg.augment)()
    trainer = Trainer(cfg)
    losses = [trainer.train_epoch(epoch)["train_loss"] for epoch in range(8)]
    assert sum(losses[-2:]) / 2 < 0.6 * losses[0], losses


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(root, tmp_path):
    trainer = Trainer(_cfg(root, tmp_path))
    trainer.fit(max_epochs=1)
    before = _params(tmp_path / "last.pt")
    calls = {"n": 0}
    real = trainer.criterion

    def poisoned(logits, y):
        calls["n"] += 1
        loss = real(logits, y)
        return loss * float("nan") if calls["n"] == 2 else loss

    trainer.criterion = poisoned
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2.*last\.pt \(after epoch 1\)"):
        trainer.fit()
    state = load_state(tmp_path / "last.pt")
    assert state["epoch"] == 1
    for key, value in before.items():
        assert torch.equal(state["model"][key], value)


def test_chosen_checkpoint_is_tested_on_the_test_split(root, tmp_path):
    from sttr.model.checkpoint import load_checkpoint

    result = Trainer(_cfg(root, tmp_path)).fit()
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt.meta["epoch"] == result["best_epoch"] and ckpt.meta["val_subjects"]
    assert ckpt.labels == ["class0", "class1", "class2"]
    with open(tmp_path / "test" / "test_scores.pkl", "rb") as f:
        scores = pickle.load(f)
    assert sorted(scores) == [f"test_{i:03d}" for i in range(6)]
    model = ckpt.build_model()
    from sttr.training.feeder import SkeletonFeeder
    x = torch.stack([SkeletonFeeder(root, "test")[i][0] for i in range(6)])
    with torch.no_grad():
        expect = model(x).numpy()
    for i in range(6):
        torch.testing.assert_close(torch.from_numpy(scores[f"test_{i:03d}"]), torch.from_numpy(expect[i]),
                                   rtol=1e-4, atol=1e-4)


def test_bf16_autocast_trains_on_cpu(root, tmp_path):
    trainer = Trainer(TrainConfig.from_dict({**_cfg(root, tmp_path, optim__epochs=1).to_dict(), "precision": "bf16"}))
    result = trainer.fit()
    assert result["epochs_done"] == 1 and 0 <= result["test"]["top1"] <= 1


def test_fp16_on_cpu_is_refused(root, tmp_path):
    cfg = TrainConfig.from_dict({**_cfg(root, tmp_path).to_dict(), "precision": "fp16"})
    with pytest.raises(ValueError, match="fp16"):
        Trainer(cfg)


def test_data_workers_are_capped_at_the_usable_cpus(root, tmp_path, monkeypatch, caplog):
    import os
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    with caplog.at_level("INFO", logger="sttr.training.trainer"):
        trainer = Trainer(_cfg(root, tmp_path / "w", data__num_workers=4))
        assert trainer._loader(trainer.train_set, train=True).num_workers == 2
        assert trainer._loader(trainer.train_set, train=False).num_workers == 2
    assert sum("data.num_workers 4 > 2 usable CPUs" in r.getMessage() for r in caplog.records) == 1
    one = Trainer(_cfg(root, tmp_path / "z", data__num_workers=1))
    assert one._loader(one.train_set, train=True).num_workers == 1


def test_num_classes_below_the_labels_is_refused_before_training(root, tmp_path):
    """Also where Trainer is used as a library (the CLI checks the label files itself)."""
    cfg = TrainConfig.from_dict({**_cfg(root, tmp_path).to_dict(), "model": {"preset": "nano", "num_classes": 2}})
    with pytest.raises(ValueError, match=r"model.num_classes is 2 but .* has labels up to 2 \(3 classes\)"):
        Trainer(cfg)


def test_the_checkpoint_says_the_window_the_model_was_trained_at(root, tmp_path):
    """Trained at data.window=4 on 8-frame data: export and the live path must use 4 frames, not 8."""
    from sttr.model.checkpoint import load_checkpoint

    cfg = TrainConfig.from_dict({**_cfg(root, tmp_path).to_dict(), "data": {**_cfg(root, tmp_path).to_dict()["data"],
                                                                             "window": 4}})
    Trainer(cfg).fit(max_epochs=1)
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt.preprocess["window"] == ckpt.meta["window"] == 4


def test_a_shorter_last_accumulation_group_is_averaged_over_its_own_batches(root, tmp_path):
    """accumulate=3 over 2 batches: the only group holds two batches, whose mean loss must count whole (each was
    divided by 3, as if a third batch of zero loss had joined; the reference divides by the group's real size)."""
    trainer = Trainer(_cfg(root, tmp_path / "w", optim__epochs=1, optim__accumulate=3))
    raw, scaled = [], []
    criterion, scale = trainer.criterion, trainer.scaler.scale

    def recording_criterion(logits, y):
        loss = criterion(logits, y)
        raw.append(loss.item())
        return loss

    def recording_scale(value):
        scaled.append(value.item())
        return scale(value)

    trainer.criterion, trainer.scaler.scale = recording_criterion, recording_scale
    trainer.train_epoch(0)
    assert len(raw) == 2, "the fixture should give two training batches"
    assert [round(r / s) for r, s in zip(raw, scaled)] == [2, 2]


def test_random_crops_are_evaluated_on_whole_clips_at_their_own_frame_rate(tmp_path):
    """Training on random 8-frame crops of 16-frame clips (Kinetics: 150 of 300) keeps the frame rate; validation,
    test and the checkpoint's live window squeezed each clip into 8 frames (half the rate). Now they take the whole
    clip, as the reference tests Kinetics, unless data.test_window says otherwise."""
    from sttr.model.checkpoint import load_checkpoint

    data = make_dataset(tmp_path / "ds", layout="natops8", n_train=12, n_test=6, T=16, M=1, subjects=3)
    for test_window, frames in ((None, 16), (8, 8)):
        work = tmp_path / f"w{test_window}"
        cfg = _cfg(data, work, optim__epochs=1, data__window=8, data__test_window=test_window,
                   augment__random_window=True, augment__crop=[])
        trainer = Trainer(cfg)
        assert trainer.val_set.shape[1] == frames
        trainer.fit()
        ckpt = load_checkpoint(work / "best.pt")
        generated = trainer.train_set.meta.preprocess
        assert ckpt.meta["window"] == ckpt.preprocess["window"] == frames
        if generated.get("fps"):
            assert ckpt.preprocess["fps"] == pytest.approx(generated["fps"] * frames / 16)
