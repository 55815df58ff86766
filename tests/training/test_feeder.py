"""Feeder: memory-mapped reads, per-(seed, epoch, sample) augmentation independent of workers, validation split."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sttr.training.config import AugmentConfig
from sttr.training.feeder import SkeletonFeeder, validation_split

from ._data import make_dataset

AUG = AugmentConfig(rotate=15, scale=0.1, shift=0.1, mirror=0.5, crop=[0.6, 1.0])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), n_train=12, n_test=6, T=16)


def test_reads_memory_mapped_samples_unchanged(root):
    feeder = SkeletonFeeder(root, "train")
    raw = np.load(root / "train_data.npy")
    assert isinstance(feeder.data, np.memmap) and len(feeder) == 12 and feeder.num_classes == 3
    x, label, index = feeder[5]
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 16, 25, 2)
    np.testing.assert_array_equal(x.numpy(), raw[5])
    assert label == 5 % 3 and index == 5


def test_subset_keeps_split_wide_indices(root):
    feeder = SkeletonFeeder(root, "train", indices=[7, 2])
    assert len(feeder) == 2 and feeder[0][2] == 7 and feeder[1][2] == 2


def test_augmentation_depends_on_seed_epoch_and_sample_only(root):
    feeder = SkeletonFeeder(root, "train", augment=AUG, window=12, seed=3)
    feeder.set_epoch(2)
    by_main = [feeder[i][0] for i in range(len(feeder))]
    loader = DataLoader(feeder, batch_size=4, num_workers=2, shuffle=False)
    by_workers = torch.cat([x for x, _, _ in loader])
    torch.testing.assert_close(torch.stack(by_main), by_workers, rtol=0, atol=0)
    assert by_workers.shape[2] == 12
    feeder.set_epoch(3)
    assert not torch.equal(feeder[0][0], by_main[0])
    feeder.set_epoch(2)
    assert torch.equal(feeder[0][0], by_main[0])


def test_evaluation_resizes_without_randomness(root):
    feeder = SkeletonFeeder(root, "test", window=8)
    a, b = feeder[0][0], feeder[0][0]
    assert tuple(a.shape) == (3, 8, 25, 2) and torch.equal(a, b)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_data.npy"):
        SkeletonFeeder(tmp_path, "train")


def test_a_missing_split_names_what_the_folder_holds(root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"val_data.npy does not exist \(this folder has the splits test, "
                                                r"train\)"):
        SkeletonFeeder(root, "val")
    (tmp_path / "S001C001P001R001A001.skeleton").write_text("0\n")
    with pytest.raises(FileNotFoundError, match="raw NTU .skeleton files: .* `sttr gendata` first"):
        SkeletonFeeder(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        SkeletonFeeder(tmp_path / "absent", "train")


def test_validation_split_by_subject_never_mixes_subjects():
    subjects = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    labels = [0, 1] * 5
    train, val, held = validation_split(labels, subjects, val_fraction=0.3, seed=0)
    assert len(held) >= 1 and set(train).isdisjoint(val) and len(train) + len(val) == 10
    assert {subjects[i] for i in val} == set(held) and not {subjects[i] for i in train} & set(held)
    train2, val2, held2 = validation_split(labels, subjects, val_subjects=[2], seed=0)
    assert held2 == [2] and sorted(val2.tolist()) == [2, 3]
    with pytest.raises(ValueError, match="not training subjects"):
        validation_split(labels, subjects, val_subjects=[9])


def test_validation_split_without_subjects_is_stratified():
    labels = [0] * 10 + [1] * 10
    train, val, held = validation_split(labels, None, val_fraction=0.2, seed=1)
    assert held == [] and sorted(np.asarray(labels)[val].tolist()) == [0, 0, 1, 1]
    assert len(validation_split(labels, None, val_fraction=0.0)[1]) == 0


def test_a_truncated_data_file_or_a_broken_meta_is_named(root, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    data = (bad / "train_data.npy").read_bytes()
    (bad / "train_data.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"train_data.npy: not a readable .npy array, truncated or corrupt"):
        SkeletonFeeder(bad, "train")
    (bad / "test_meta.json").write_text("{'layout': ")
    with pytest.raises(ValueError, match=r"test_meta.json: not valid JSON"):
        SkeletonFeeder(bad, "test")
    (bad / "test_meta.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"test_meta.json: expected a JSON object"):
        SkeletonFeeder(bad, "test")
