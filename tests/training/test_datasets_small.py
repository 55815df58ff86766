"""Readers of the small real datasets (protocol sizes from SOURCES.md) and of custom datasets."""
import numpy as np
import pytest

from sttr.training.datasets import (CustomProtocol, generate_custom, generate_msr_action3d, generate_natops,
                                    load_custom, load_florence3d, load_msr_action3d, load_natops, resample)
from sttr.training.datasets.custom import custom_splits
from sttr.training.datasets.florence3d import protocol_splits as florence_splits
from sttr.training.datasets.msr_action3d import half_splits
from sttr.training.datasets.msr_action3d import protocol_splits as msr_splits
from sttr.training.feeder import SkeletonFeeder


@pytest.fixture(scope="module")
def msr(shared_data):
    return load_msr_action3d(shared_data / "small" / "MSRAction3D")


def test_msr_action3d_protocol_sizes_and_zero_frames(msr):
    assert len(msr) == 557
    sizes = {p: tuple(len(v) for v in msr_splits(msr, p)[0].values()) for p in ("as1", "as2", "as3", "cs")}
    assert sizes == {"as1": (114, 105), "as2": (116, 112), "as3": (111, 111), "cs": (284, 273)}
    by_name = {s.name: s for s in msr}
    assert all(np.any(s.joints.reshape(len(s.joints), -1) != 0, axis=1).all() for s in msr)
    assert by_name["a20_s02_e01"].joints.shape[0] < 55 - 20  # ~30 all-zero frames of 55 dropped
    head, foot = 19, 17
    y = np.concatenate([s.joints[:, 0, :, 1] for s in msr[:30]])
    assert y[:, head].mean() > 0.3 and y[:, foot].mean() < -0.8
    _, label_map = msr_splits(msr, "as1")
    assert sorted(label_map.values()) == list(range(8))


def test_msr_action3d_p3_half_splits_from_the_real_mat_file(msr, shared_data, tmp_path):
    root = shared_data / "small" / "MSRAction3D"
    splits = half_splits(root)
    assert len(splits) == 10
    assert splits[0] == ([1, 2, 3, 5, 10], [4, 6, 7, 8, 9]) and splits[9] == ([2, 3, 5, 9, 10], [1, 4, 6, 7, 8])
    for train, test in splits:
        assert sorted(train + test) == list(range(1, 11)) and len(train) == 5  # half/half, disjoint
    assert set.intersection(*(set(tr) for tr, _ in splits)) == {2, 3, 5}
    assert len({tuple(tr) for tr, _ in splits}) == 10
    sizes = []
    for k, (train_subjects, test_subjects) in enumerate(splits, 1):
        idx, label_map = msr_splits(msr, f"split_{k}", root)
        assert label_map is None and len(idx["train"]) + len(idx["test"]) == 557
        assert {msr[i].subject for i in idx["train"]} == set(train_subjects)
        assert {msr[i].subject for i in idx["test"]} == set(test_subjects)
        sizes.append((len(idx["train"]), len(idx["test"])))
    assert sizes[0] == (288, 269) and sizes[1] == (265, 292)  # split 2 trains on short subject 4
    with pytest.raises(ValueError, match="need the dataset root"):
        msr_splits(msr, "split_1")
    folder = generate_msr_action3d(root, tmp_path, window=8, protocols=["split_2"])["split_2"]
    train, test = SkeletonFeeder(folder, "train"), SkeletonFeeder(folder, "test")
    assert (len(train), len(test)) == (265, 292) and train.num_classes == 20
    assert set(train.meta.subjects) == {2, 3, 4, 5, 10} and set(test.meta.subjects) == {1, 6, 7, 8, 9}
    with pytest.raises(ValueError, match="unknown protocol"):
        msr_splits(msr, "split_11")


def test_florence3d_height_axis_and_leave_one_actor_out(shared_data):
    samples = load_florence3d(shared_data / "small" / "Florence3D")
    assert len(samples) == 215 and sum(len(s.joints) for s in samples) == 4016
    head, spine = 0, 2
    assert all(s.joints[:, 0, head, 1].mean() > s.joints[:, 0, spine, 1].mean() for s in samples)
    assert 1.5 < np.mean([s.joints[:, 0, spine, 2].mean() for s in samples]) < 4  # depth, metres
    splits = florence_splits(samples, "loao_1")
    assert (len(splits["train"]), len(splits["test"])) == (186, 29)
    halves = florence_splits(samples, "split_1", shared_data / "small" / "Florence3D")
    assert len(halves["train"]) + len(halves["test"]) == 215


def test_natops_parse_and_generated_files_feed_the_trainer(shared_data, tmp_path):
    root = shared_data / "small" / "NATOPS"
    train = load_natops(root, "train")
    assert len(train) == 180 and train[0].joints.shape == (51, 1, 8, 3)
    assert np.bincount([s.label for s in train]).tolist() == [30] * 6
    folder = generate_natops(root, tmp_path, window=16)["uea"]
    feeder = SkeletonFeeder(folder, "test")
    assert len(feeder) == 180 and feeder.shape == (3, 16, 8, 1) and feeder.layout.name == "natops8"
    assert feeder.meta.label_names[0] == "I have command" and feeder.meta.preprocess["window"] == 16


def test_resample_keeps_end_points():
    seq = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 3), np.float32)
    out = resample(seq, 9)
    assert out.shape == (3, 9, 2, 1)
    np.testing.assert_allclose(out[0, :, 0, 0], np.linspace(0, 4, 9))


def _write_custom(folder, n=8):
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label,subject,camera"]
    for i in range(n):
        shape = (10 + i, 20, 3) if i % 2 else (10 + i, 2, 20, 3)
        arr = rng.normal(size=shape).astype(np.float32)
        arr[0] = 0  # an empty frame, dropped
        np.save(folder / f"clip{i}.npy", arr)
        rows.append(f"clip{i}.npy,{'wave' if i % 2 else 'kick'},{i % 4 + 1},{i % 2 + 1}")
    (folder / "samples.csv").write_text("\n".join(rows) + "\n")
    (folder / "train.txt").write_text("clip0.npy\nclip1.npy\nclip2.npy\n")


def test_custom_dataset_protocols_and_output(tmp_path):
    _write_custom(tmp_path / "raw")
    samples, classes = load_custom(tmp_path / "raw", "kinect20")
    assert classes == ["kick", "wave"] and samples[1].joints.shape == (10, 2, 20, 3)  # person slot padded
    assert samples[0].joints.shape[0] == 9
    by_subject = custom_splits(samples, CustomProtocol(test_subjects=[1]))
    assert by_subject["test"] == [0, 4]
    by_camera = custom_splits(samples, CustomProtocol(train_cameras=[1]))
    assert by_camera["train"] == [0, 2, 4, 6]
    by_file = custom_splits(samples, CustomProtocol(train_list="train.txt"), tmp_path / "raw")
    assert by_file["train"] == [0, 1, 2] and len(by_file["test"]) == 5
    with pytest.raises(ValueError, match="exactly one"):
        custom_splits(samples, CustomProtocol(test_subjects=[1], test_cameras=[1]))
    # a typo in a list would silently move every sample to the other side
    with pytest.raises(ValueError, match=r"no sample has subject 7, 9 \(samples.csv has subjects 1, 2, 3, 4\)"):
        custom_splits(samples, CustomProtocol(train_subjects=[1, 7, 9]))
    with pytest.raises(ValueError, match=r"no sample has camera 3"):
        custom_splits(samples, CustomProtocol(test_cameras=[3]))
    out = generate_custom(tmp_path / "raw", tmp_path / "out", "kinect20", CustomProtocol(test_subjects=[1]), window=12)
    feeder = SkeletonFeeder(out, "train")
    assert feeder.shape == (3, 12, 20, 2) and feeder.meta.subjects == [2, 3, 4, 2, 3, 4]


def test_custom_dataset_unknown_layout_is_a_usage_error(tmp_path, capsys):
    from sttr.training.cli.gendata import main

    _write_custom(tmp_path / "raw", n=2)
    with pytest.raises(SystemExit) as err:
        main(["custom", "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--layout", "kinect21",
              "--test-subjects", "1"])
    assert err.value.code == 2
    assert "--layout: unknown skeleton layout 'kinect21'; known: body25" in capsys.readouterr().err


def test_custom_dataset_bad_shape_is_named(tmp_path):
    _write_custom(tmp_path / "raw", n=2)
    np.save(tmp_path / "raw" / "clip1.npy", np.zeros((5, 25, 3), np.float32))
    with pytest.raises(ValueError, match=r"clip1\.npy.*V = 20"):
        load_custom(tmp_path / "raw", "kinect20")


def test_custom_dataset_in_a_declared_layout_file_trains_and_evaluates(tmp_path, capsys):
    """A user's YAML layout travels with the data (its whole definition in the meta), so training and evaluation
    need no registration and no layout file."""
    import json

    from sttr.training.cli import eval as eval_cli
    from sttr.training.cli import train as train_cli
    from sttr.training.cli.gendata import main as gendata

    (tmp_path / "arm5.yaml").write_text("name: arm5\njoints: [spine, shoulder, elbow, wrist, hand]\n"
                                        "edges: [[shoulder, spine], [elbow, shoulder], [wrist, elbow], [hand, wrist]]\n"
                                        "center: spine\nchannels: [x, y, z]\n")
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(1)
    rows = ["file,label,subject"]
    for i in range(8):
        np.save(raw / f"c{i}.npy", rng.normal(size=(9 + i, 5, 3)).astype(np.float32))
        rows.append(f"c{i}.npy,{'up' if i % 2 else 'down'},{i % 4 + 1}")
    (raw / "samples.csv").write_text("\n".join(rows) + "\n")
    assert gendata(["custom", "--root", str(raw), "--out", str(tmp_path / "ds"), "--layout",
                    str(tmp_path / "arm5.yaml"), "--test-subjects", "1", "--window", "8"]) == 0
    meta = json.loads((tmp_path / "ds" / "train_meta.json").read_text())
    assert meta["layout"]["name"] == "arm5" and meta["layout"]["parents"] == [-1, 0, 1, 2, 3]
    work = tmp_path / "run"
    capsys.readouterr()
    assert train_cli.main(["--set", "model.preset=nano", f"data.root={tmp_path / 'ds'}", "data.batch_size=3",
                           "data.num_workers=0", "optim.epochs=1", "progress=false", "tensorboard=false", "threads=1",
                           "--work-dir", str(work)]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["num_samples"] == 2
    assert eval_cli.main([str(work / "best.pt"), "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "ev")]) == 0


def test_custom_samples_with_the_same_name_are_refused(tmp_path):
    """Names key the written samples: two `clip.npy` in different folders must not become one."""
    raw = tmp_path / "raw"
    for sub in ("p1", "p2"):
        (raw / sub).mkdir(parents=True)
        np.save(raw / sub / "clip.npy", np.random.default_rng(0).normal(size=(6, 20, 3)).astype(np.float32))
    np.save(raw / "c3.npy", np.ones((6, 20, 3), np.float32))
    (raw / "samples.csv").write_text("file,label,subject\np1/clip.npy,wave,1\np2/clip.npy,kick,2\nc3.npy,wave,3\n")
    with pytest.raises(ValueError, match=r"two samples are both named 'clip' \(.*p1.*clip.npy and .*p2.*clip.npy\)"):
        generate_custom(raw, tmp_path / "out", "kinect20", CustomProtocol(test_subjects=[1]), window=6)


def test_a_rerun_after_a_sample_file_changed_regenerates(tmp_path):
    """The split is kept on a rerun only when nothing changed, the files' contents included."""
    import os

    _write_custom(tmp_path / "raw", n=4)
    out = generate_custom(tmp_path / "raw", tmp_path / "out", "kinect20", CustomProtocol(test_subjects=[1]), window=6)
    before = np.load(out / "train_data.npy").copy()
    path = tmp_path / "raw" / "clip1.npy"
    np.save(path, np.load(path) * 2.0)  # centring would undo a shift
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later time, whatever the clock
    generate_custom(tmp_path / "raw", tmp_path / "out", "kinect20", CustomProtocol(test_subjects=[1]), window=6)
    assert not np.array_equal(np.load(out / "train_data.npy"), before)


def test_an_unreadable_custom_sample_is_named(tmp_path):
    _write_custom(tmp_path / "raw", n=2)
    path = tmp_path / "raw" / "clip1.npy"
    full = path.read_bytes()
    path.write_bytes(full[:200])  # truncated
    with pytest.raises(ValueError, match=r"clip1\.npy: truncated \.npy file"):
        load_custom(tmp_path / "raw", "kinect20")
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"clip1\.npy: not a numeric \.npy array"):
        load_custom(tmp_path / "raw", "kinect20")
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"clip1\.npy: not a numeric \.npy array"):
        load_custom(tmp_path / "raw", "kinect20")
