"""gendata end to end on the real NTU samples and the Kinetics demo JSON (copied/linked into tmp_path)."""
import json
import pickle

import numpy as np
import pytest

from sttr.model.preprocess import PreprocessSpec
from sttr.model.skeleton import NtuJoint
from sttr.training.cli.gendata import main
from sttr.training.gendata import SampleTask, generate_split
from sttr.training.gendata.bodies import motion_energy, select_bodies
from sttr.training.gendata.kinetics import kinetics_window, track_people
from sttr.training.gendata.ntu import NtuPlan, check_split_sizes
from sttr.training.gendata.runner import SplitSummary
from sttr.training.gendata.splits import EXPECTED_SIZES, ntu_split
from sttr.training.readers.ntu import parse_sample_name, read_skeleton

XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}  # spec §4.3


@pytest.fixture()
def ntu_raw(shared_data, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in sorted((shared_data / "ntu60").glob("*.skeleton")):
        (raw / path.name).symlink_to(path)
    lines = (shared_data / "ntu60/S001C001P001R001A001.skeleton").read_text().splitlines()
    (raw / "S003C001P002R001A005.skeleton").write_text("\n".join(lines[:100]))  # truncated
    (raw / "S001C002P005R002A008.skeleton").write_text("0\n")  # in the official missing list
    (raw / "S018C001P001R001A061.skeleton").write_text("0\n")  # NTU-120 only
    return raw


def _load(folder, split):
    data = np.load(folder / f"{split}_data.npy", mmap_mode="r")
    with open(folder / f"{split}_label.pkl", "rb") as f:
        names, labels = pickle.load(f)
    meta = json.loads((folder / f"{split}_meta.json").read_text())
    return data, names, labels, meta


def test_ntu60_xsub_end_to_end(ntu_raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["ntu60", "--raw", str(ntu_raw), "--out", str(out), "--benchmark", "xsub", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "1 files SKIPPED" in text and "S003C001P002R001A005.skeleton" in text
    total = 0
    for split in ("train", "test"):
        data, names, labels, meta = _load(out / "xsub", split)
        assert data.dtype == np.float32 and data.shape == (len(names), 3, 300, 25, 2)
        for name, label in zip(names, labels):
            sid = parse_sample_name(name)
            assert label == sid.action - 1
            assert (sid.subject in XSUB_TRAIN) == (split == "train")
        assert meta["subjects"] == [parse_sample_name(n).subject for n in names]
        assert meta["cameras"] == [parse_sample_name(n).camera for n in names]
        assert meta["setups"] == [parse_sample_name(n).setup for n in names]
        assert meta["layout"] == "ntu25" and PreprocessSpec.from_dict(meta["preprocess"]).window == 300
        assert len(meta["label_names"]) == 60 and meta["label_names"][0] == "drink water"
        assert sum(meta["counts"]["per_class"].values()) == len(names)
        np.testing.assert_allclose(data[:, :, :, NtuJoint.SPINE_MID, 0], 0, atol=1e-6)  # centred
        total += len(names)
    assert total == 10  # 10 real samples; truncated skipped, missing-list and NTU-120 files left out
    _, _, _, meta = _load(out / "xsub", "train")  # both are subject 2 (xsub train)
    assert [s["name"] for s in meta["skipped"]] == ["S003C001P002R001A005.skeleton"]
    assert "line 101" in meta["skipped"][0]["reason"] and meta["counts"]["skipped"] == 1
    assert [e["name"] for e in meta["excluded"]] == ["S001C002P005R002A008.skeleton"]
    # a two-person clip keeps both bodies, largest motion energy first
    data, names, _, _ = _load(out / "xsub", "test")
    sample = data[names.index("S017C003P020R002A055.skeleton")]
    assert np.all(np.any(sample != 0, axis=(0, 2)))
    # the rerun finds the splits complete and leaves them alone
    mtime = (out / "xsub/test_data.npy").stat().st_mtime_ns
    assert main(["ntu60", "--raw", str(ntu_raw), "--out", str(out), "--benchmark", "xsub", "--no-progress"]) == 0
    assert "unchanged (already complete)" in capsys.readouterr().out
    assert (out / "xsub/test_data.npy").stat().st_mtime_ns == mtime


def test_xview_bones_merged_and_legacy(ntu_raw, tmp_path):
    out = tmp_path / "out"
    args = ["ntu60", "--raw", str(ntu_raw), "--out", str(out), "--benchmark", "xview", "--no-progress",
            "--bones", "merge", "--pre-normalization", "legacy", "--window", "64", "--workers", "2"]
    assert main(args) == 0
    data, names, _, meta = _load(out / "xview", "train")
    assert data.shape[1:] == (6, 64, 25, 2)
    assert all(parse_sample_name(n).camera in (2, 3) for n in names)
    parents = [1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 20, 22, 7, 24, 11]  # spec §4.5
    np.testing.assert_allclose(data[:, 3:], data[:, :3] - data[:, :3][..., parents, :], atol=1e-6)
    assert meta["preprocess"]["pre_normalization"] == "legacy"


def test_body_selection_by_motion_energy(shared_data):
    joints = read_skeleton(shared_data / "ntu60/S001C001P001R001A050.skeleton").joints  # (74, 2, 25, 3)
    still = np.repeat(joints[:1, :1], len(joints), axis=0) + 0.001  # a third body that does not move
    three = np.concatenate([still, joints], axis=1)
    energy = [sum(three[:, b, :, c].std() for c in range(3)) for b in range(3)]
    chosen = select_bodies(three, 2)
    expected = np.argsort(energy)[::-1][:2]
    assert 0 not in expected
    np.testing.assert_array_equal(chosen, three[:, expected])
    assert motion_energy(three[:, 1]) == pytest.approx(energy[1], rel=1e-6)


def test_energy_ignores_empty_frames():
    body = np.zeros((10, 25, 3), np.float32)
    body[:5] = np.arange(1, 6, dtype=np.float32)[:, None, None]
    assert motion_energy(body) == pytest.approx(3 * np.arange(1, 6).std())


def test_splits():
    sid = parse_sample_name
    assert ntu_split(sid("S001C001P001R001A001"), "ntu60", "xsub") == "train"
    assert ntu_split(sid("S001C001P003R001A001"), "ntu60", "xsub") == "test"
    assert ntu_split(sid("S001C001P001R001A001"), "ntu60", "xview") == "test"
    assert ntu_split(sid("S001C002P001R001A001"), "ntu60", "xview") == "train"
    assert ntu_split(sid("S020C001P045R001A100"), "ntu120", "xsub") == "train"
    assert ntu_split(sid("S020C001P045R001A100"), "ntu120", "xset") == "train"
    assert ntu_split(sid("S019C001P045R001A100"), "ntu120", "xset") == "test"
    with pytest.raises(ValueError, match="xset"):
        ntu_split(sid("S001C001P001R001A001"), "ntu60", "xset")
    for (dataset, _), sizes in EXPECTED_SIZES.items():  # reported sizes = full dataset minus the missing list
        assert sum(sizes.values()) == {"ntu60": 56880 - 302, "ntu120": 114480 - 535}[dataset]


def test_full_dataset_size_check_warns():
    plan = NtuPlan({"train": [], "test": []}, num_files=56880)
    summaries = {"train": SplitSummary("train", 40000, {}), "test": SplitSummary("test", 16487, {})}
    warnings = check_split_sizes("ntu60", "xsub", plan, summaries)
    assert len(warnings) == 1 and "40000 samples, but 40091" in warnings[0]
    plan.num_files = 100
    assert check_split_sizes("ntu60", "xsub", plan, summaries) == []


class _Interrupt(Exception):
    pass


def _counting_loader(calls, fail_at=None):
    def load(task):
        if fail_at is not None and len(calls) == fail_at:
            raise _Interrupt()
        calls.append(task.name)
        return np.full((3, 5, 25, 2), float(task.label), np.float32)
    return load


def test_interrupted_split_resumes(tmp_path, monkeypatch):
    import sttr.training.gendata.writer as writer

    monkeypatch.setattr(writer.SplitWriter, "_maybe_save", lambda self, every_s=0: self.save_progress())
    tasks = [SampleTask(f"s{i}", f"/nowhere/s{i}", i % 3) for i in range(8)]
    spec = PreprocessSpec(window=8, pre_normalization="none", padding="zero")
    calls = []
    with pytest.raises(_Interrupt):
        generate_split(tmp_path, "train", tasks, _counting_loader(calls, fail_at=5), spec, meta={}, progress=False)
    assert (tmp_path / "train_data.npy.partial").exists() and not (tmp_path / "train_data.npy").exists()
    resumed = []
    summary = generate_split(tmp_path, "train", tasks, _counting_loader(resumed), spec, meta={}, progress=False)
    assert resumed == ["s5", "s6", "s7"] and summary.num_samples == 8
    data = np.load(tmp_path / "train_data.npy", mmap_mode="r")
    assert data[:, 0, 0, 0, 0].tolist() == [i % 3 for i in range(8)]
    assert not (tmp_path / "train_data.npy.partial").exists() and not (tmp_path / "train_progress.json").exists()


def test_kinetics_window_transform():
    joints = np.zeros((2, 3, 18, 3), np.float32)
    joints[0, 0] = [0.2, 0.7, 0.1]  # low score
    joints[0, 1] = [0.6, 0.4, 0.9]  # high score
    joints[0, 1, 5, 2] = 0  # undetected joint
    joints[1, 2] = [0.5, 0.5, 0.5]
    out = kinetics_window(joints, persons_in=5, persons_out=2)
    assert out.shape == (3, 2, 18, 2)
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.1, 0.1, 0.9], atol=1e-6)  # x - 0.5, -(y - 0.5); best person first
    np.testing.assert_allclose(out[:, 0, 0, 1], [-0.3, -0.2, 0.1], atol=1e-6)
    assert out[0, 0, 5, 0] == 0 and out[1, 0, 5, 0] == 0  # zeroed where the score is 0
    np.testing.assert_allclose(out[:, 1, 0, 0], [0, 0, 0.5], atol=1e-6)  # frame 1: its only person moved to slot 0


def test_kinetics_end_to_end(shared_data, tmp_path, caplog):
    raw = tmp_path / "kinetics_val"
    raw.mkdir()
    for name in ("clean_and_jerk", "swimming", "ta_chi"):
        (raw / f"{name}.json").symlink_to(shared_data / "kinetics/st-gcn-demo-output" / f"{name}.json")
    labels = tmp_path / "kinetics_val_label.json"
    labels.write_text(json.dumps({
        "clean_and_jerk": {"has_skeleton": True, "label": "clean and jerk", "label_index": 59},
        "swimming": {"has_skeleton": True, "label": "swimming backstroke", "label_index": 0},
        "ta_chi": {"has_skeleton": False, "label": "tai chi", "label_index": 346}}))
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="sttr.training.gendata.kinetics"):
        assert main(["kinetics", "--raw", str(raw), "--labels", str(labels), "--out", str(out), "--no-progress"]) == 0
    # 'swimming backstroke' is not class 0 of Kinetics-400: said once, naming it; 'clean and jerk' (59) is
    renamed = [r.getMessage() for r in caplog.records if "named otherwise" in r.getMessage()]
    assert len(renamed) == 1 and "1 class(es)" in renamed[0]
    assert "label_index 0 is 'swimming backstroke' there and 'abseiling' here" in renamed[0]
    data, names, labels_out, meta = _load(out / "kinetics", "test")
    assert names == ["clean_and_jerk.json", "swimming.json"] and labels_out == [59, 0]
    assert data.shape == (2, 3, 300, 18, 2)
    assert meta["label_names"][59] == "clean and jerk"
    assert [e["name"] for e in meta["excluded"]] == ["ta_chi.json"]
    video = json.loads((raw / "clean_and_jerk.json").read_text())["data"][0]["skeleton"][0]
    np.testing.assert_allclose(data[0, 0, 0, :, 0], np.array(video["pose"][0::2]) - 0.5, atol=1e-6)
    frames = json.loads((raw / "swimming.json").read_text())["data"]  # 382 frames, cut to 300
    with_people = {f["frame_index"] for f in frames if f["frame_index"] < 300 and f["skeleton"]}
    assert set(np.flatnonzero(np.any(data[1], axis=(0, 2, 3)))) == with_people  # zero-padded, not looped


def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["--help"])
    assert err.value.code == 0 and "ntu120" in capsys.readouterr().out
    assert main(["ntu60", "--raw", str(tmp_path / "absent"), "--out", str(tmp_path), "--benchmark", "xsub"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ntu120_reads_both_folders(shared_data, tmp_path):
    first, second = tmp_path / "s001_s017", tmp_path / "s018_s032"
    first.mkdir(), second.mkdir()
    for path in sorted((shared_data / "ntu60").glob("S001*.skeleton")):
        (first / path.name).symlink_to(path)
    for path in sorted((shared_data / "ntu60").glob("S017*.skeleton")):
        (second / path.name).symlink_to(path)  # stand-ins: no S018-S032 sample is available
    (second / "S018C001P001R001A061.skeleton").write_text("0\n")  # an empty recording
    out = tmp_path / "out"
    assert main(["ntu120", "--raw", str(first), str(second), "--out", str(out), "--benchmark", "xset",
                 "--no-progress"]) == 0
    train, train_names, _, train_meta = _load(out / "xset", "train")
    _, test_names, _, test_meta = _load(out / "xset", "test")
    assert len(train_meta["label_names"]) == 120
    assert len(test_names) == 8  # setups 1 and 17 are odd: test
    assert train_names == [] and train.shape == (0, 3, 300, 25, 2)  # setup 18 is even: train, but unreadable
    assert train_meta["skipped"][0]["name"] == "S018C001P001R001A061.skeleton"
    assert "no body" in train_meta["skipped"][0]["reason"]


def test_kinetics_person_order_track_keeps_identities():
    frames = 20
    joints = np.zeros((frames, 2, 18, 3), np.float32)
    score_a = np.linspace(0.2, 0.8, frames)  # A fades in while B fades out: the per-frame order swaps midway
    for t in range(frames):
        a = [0.2 + 0.005 * t, 0.5, score_a[t]]
        b = [0.8, 0.5, 1.0 - score_a[t]]
        joints[t, 0], joints[t, 1] = (a, b) if t % 2 else (b, a)  # the detector lists them in any order
    by_score = kinetics_window(joints, person_order="score")
    by_track = kinetics_window(joints, person_order="track")
    x_score = by_score[0, :, 0, 0] + 0.5
    assert np.any(np.isclose(x_score, 0.8)) and np.any(x_score < 0.5)  # slot 0 holds A in some frames, B in others
    for slot in range(2):
        x = by_track[0, :, 0, slot] + 0.5
        assert np.all(x < 0.5) or np.allclose(x, 0.8)  # each slot is one person throughout
    np.testing.assert_allclose(sorted(by_track[2].sum(axis=(0, 1))), sorted([score_a.sum() * 18,
                                                                            (1 - score_a).sum() * 18]), rtol=1e-5)


def test_track_people_bridges_short_gaps_only():
    joints = np.zeros((30, 1, 18, 3), np.float32)
    joints[:, 0] = [0.3, 0.3, 0.9]
    joints[5:8] = 0  # lost for 3 frames: the same track continues
    joints[12:25] = 0  # lost for 13 frames (> max_gap 10): a new track
    tracks = track_people(joints, max_gap=10)
    assert tracks.shape == (30, 2, 18, 3)
    present = np.any(tracks[..., 2] > 0, axis=2)  # (T, K)
    assert present[:12, 0].sum() == 9 and not present[12:, 0].any() and present[25:, 1].all()


def test_second_benchmark_reuses_the_first(ntu_raw, tmp_path, monkeypatch):
    import sttr.training.gendata.ntu as ntu

    alone = tmp_path / "alone"
    base = ["ntu60", "--raw", str(ntu_raw), "--no-progress", "--window", "64"]  # most samples are cut to 64
    assert main(base + ["--out", str(alone), "--benchmark", "xview"]) == 0
    reads = []
    real = ntu.load_ntu_sample
    monkeypatch.setattr(ntu, "load_ntu_sample", lambda task, **kw: reads.append(task.name) or real(task, **kw))
    both = tmp_path / "both"
    assert main(base + ["--out", str(both), "--benchmark", "xsub", "xview"]) == 0
    assert len(reads) == 11  # 10 real + the truncated one, read once for both benchmarks
    for split in ("train", "test"):
        a, names_a, labels_a, meta_a = _load(alone / "xview", split)
        b, names_b, labels_b, meta_b = _load(both / "xview", split)
        assert names_a == names_b and labels_a == labels_b
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert meta_a["skipped"] == meta_b["skipped"] and meta_a["fingerprint"] == meta_b["fingerprint"]
        # copied samples keep their "cut to the window" count (was 0 for the second benchmark)
        assert meta_a["counts"]["truncated"] == meta_b["counts"]["truncated"] > 0
        assert meta_a["truncated_rows"] == meta_b["truncated_rows"]


def test_truncated_count_survives_a_resume(tmp_path, monkeypatch):
    import sttr.training.gendata.writer as writer

    monkeypatch.setattr(writer.SplitWriter, "_maybe_save", lambda self, every_s=0: self.save_progress())
    tasks = [SampleTask(f"s{i}", f"/nowhere/s{i}", i % 3) for i in range(8)]
    spec = PreprocessSpec(window=8, pre_normalization="none", padding="zero")
    calls = []

    def load(task, fail_at=None):  # every second sample has 12 frames: cut to 8
        if fail_at is not None and len(calls) == fail_at:
            raise _Interrupt()
        calls.append(task.name)
        return np.ones((3, 12 if int(task.name[1:]) % 2 else 5, 25, 2), np.float32)

    with pytest.raises(_Interrupt):
        generate_split(tmp_path, "train", tasks, lambda task: load(task, fail_at=5), spec, meta={}, progress=False)
    summary = generate_split(tmp_path, "train", tasks, load, spec, meta={}, progress=False)
    meta = json.loads((tmp_path / "train_meta.json").read_text())
    assert summary.truncated == meta["counts"]["truncated"] == 4 and meta["truncated_rows"] == "01010101"


def test_non_finite_coordinates_are_skipped_and_listed(ntu_raw, tmp_path):
    lines = (ntu_raw / "S001C001P001R001A001.skeleton").read_text().splitlines()
    joint = next(i for i, line in enumerate(lines) if len(line.split()) == 12)
    lines[joint] = " ".join(["nan"] + lines[joint].split()[1:])
    (ntu_raw / "S001C001P001R001A001.skeleton").unlink()
    (ntu_raw / "S001C001P001R001A001.skeleton").write_text("\n".join(lines) + "\n")
    assert main(["ntu60", "--raw", str(ntu_raw), "--no-progress", "--out", str(tmp_path / "o"), "--benchmark",
                 "xsub"]) == 0
    data, names, _, meta = _load(tmp_path / "o" / "xsub", "train")
    assert "S001C001P001R001A001" not in " ".join(names) and np.isfinite(np.asarray(data)).all()
    reasons = {s["name"]: s["reason"] for s in meta["skipped"]}
    bad = next(r for n, r in reasons.items() if n.startswith("S001C001P001R001A001"))
    assert "non-finite values (NaN/inf) in the coordinates, the first at frame 0, joint 0" in bad


def test_gendata_cli_also_builds_the_small_datasets(shared_data, tmp_path):
    import numpy as np

    from sttr.training.cli.gendata import main

    root = shared_data / "small" / "NATOPS"
    if not root.is_dir():
        pytest.skip(f"NATOPS not found at {root}")
    assert main(["natops", "--root", str(root), "--out", str(tmp_path), "--window", "16"]) == 0
    data = np.load(tmp_path / "uea" / "train_data.npy", mmap_mode="r")
    assert data.shape == (180, 3, 16, 8, 1)
    assert main(["natops", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_label_names_must_name_every_action(ntu_raw, tmp_path):
    from sttr.training.gendata.ntu import generate_ntu
    from sttr.training.labels import load_label_names

    spec = PreprocessSpec(window=32)
    with pytest.raises(ValueError, match=r"--label-names has 2 class names; ntu60 has 60 actions \(A1..A60\)"):
        generate_ntu([ntu_raw], tmp_path / "a", "ntu60", "xsub", spec, label_names=["a", "b"], progress=False)
    with pytest.raises(ValueError, match="has 400 class names; ntu60 has 60"):
        generate_ntu([ntu_raw], tmp_path / "b", "ntu60", "xsub", spec, label_names=load_label_names("kinetics400"),
                     progress=False)
    generate_ntu([ntu_raw], tmp_path / "c", "ntu60", "xsub", spec, label_names=load_label_names("ntu120"),
                 progress=False, splits=("test",))
    meta = json.loads((tmp_path / "c" / "xsub" / "test_meta.json").read_text())
    assert meta["num_classes"] == 60 and meta["label_names"] == load_label_names("ntu60")


def test_kinetics_label_file_that_is_absent_or_a_folder_is_named(shared_data, tmp_path):
    from sttr.training.gendata.kinetics import generate_kinetics

    spec = PreprocessSpec(layout="openpose18", window=32, pre_normalization="none", persons=2)
    for labels, what in ((tmp_path, "is a folder"), (tmp_path / "nope_label.json", "does not exist")):
        with pytest.raises(FileNotFoundError, match=f"Kinetics label file {labels} {what}"):
            generate_kinetics(tmp_path, labels, tmp_path / "out", spec, progress=False)


def test_max_bodies_must_not_be_negative(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:  # -1 silently dropped every second person
        main(["ntu60", "--raw", str(tmp_path), "--out", str(tmp_path / "o"), "--benchmark", "xsub", "--max-bodies",
              "-1"])
    assert err.value.code == 2 and "expected a whole number >= 0 (0 = all), got -1" in capsys.readouterr().err


def test_kinetics_legacy_bones_from_the_command_line(shared_data, tmp_path, capsys):
    """The reference's Kinetics bones difference the score channel too (spec §9.20): reachable from `sttr gendata`
    (only the library's PreprocessSpec had the switch); the default averages the two joints' scores."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "clean_and_jerk.json").symlink_to(shared_data / "kinetics/st-gcn-demo-output/clean_and_jerk.json")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"clean_and_jerk": {"has_skeleton": True, "label": "clean and jerk",
                                                     "label_index": 59}}))
    scores = {}
    for flag in ([], ["--legacy-bones"]):
        out = tmp_path / ("legacy" if flag else "default")
        assert main(["kinetics", "--raw", str(raw), "--labels", str(labels), "--out", str(out), "--bones", "only",
                     "--split", "test", "--no-progress", *flag]) == 0
        data, _, _, meta = _load(out / "kinetics", "test")
        assert meta["preprocess"]["legacy_bones"] is bool(flag)
        scores[bool(flag)] = data[0, 2]
    assert (scores[False] >= 0).all() and (scores[True] < 0).any()  # a difference of scores goes negative
    assert main(["kinetics", "--raw", str(raw), "--labels", str(labels), "--out", str(tmp_path / "x"),
                 "--split", "test", "--legacy-bones"]) == 2
    assert "--legacy-bones goes with --bones" in capsys.readouterr().err
