"""`sttr train` and `sttr eval` end to end on a tiny dataset; config typos exit 2 naming the key."""
import json

import pytest

from sttr.training.cli import eval as eval_cli
from sttr.training.cli import train as train_cli

from ._data import make_dataset


def test_train_then_eval(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=9, n_test=4, T=8, M=1, subjects=3)
    work = tmp_path / "run"
    rc = train_cli.main(["--set", "model.preset=nano", f"data.root={root}", "data.batch_size=3", "data.num_workers=0",
                         "optim.epochs=1", "progress=false", "tensorboard=false", "threads=1", "--work-dir", str(work)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test"]["num_samples"] == 4 and (work / "best.pt").is_file() and (work / "last.pt").is_file()
    assert eval_cli.main(["--checkpoint", str(work / "best.pt"), "--data", str(root), "--out", str(tmp_path / "ev"),
                          "--per-class"]) == 0
    text = capsys.readouterr().out
    assert "4 samples" in text and (tmp_path / "ev" / "test_confusion.png").is_file()
    metrics = json.loads((tmp_path / "ev" / "test_metrics.json").read_text())
    assert metrics["top1"] == out["test"]["top1"]
    # the checkpoint may also come first, as in `sttr export CKPT`
    assert eval_cli.main([str(work / "best.pt"), "--data", str(root), "--out", str(tmp_path / "ev2")]) == 0
    assert json.loads((tmp_path / "ev2" / "test_metrics.json").read_text())["top1"] == metrics["top1"]


def test_eval_without_a_checkpoint_or_with_two_says_so(capsys):
    for argv, says in ((["--data", "d"], "the checkpoint to evaluate is missing"),
                       (["a.pt", "--checkpoint", "b.pt", "--data", "d"], "two checkpoints given")):
        with pytest.raises(SystemExit) as stop:
            eval_cli.main(argv)
        assert stop.value.code == 2
        assert says in capsys.readouterr().err


def test_train_config_typo_exits_2_naming_the_key(capsys):
    assert train_cli.main(["--set", "optim.lrr=0.1"]) == 2
    assert "'optim.lrr'" in capsys.readouterr().err


def test_resume_from_a_corrupt_state_exits_2_naming_the_file(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=2, T=8, M=1, subjects=2)
    work = tmp_path / "run"
    work.mkdir()
    (work / "last.pt").write_bytes(b"PK\x03\x04 cut short")
    rc = train_cli.main(["--set", "model.preset=nano", f"data.root={root}", "data.num_workers=0", "progress=false",
                         "tensorboard=false", "--work-dir", str(work), "--resume"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("sttr train: ") and "last.pt: not a" in err and err.count("\n") == 1


def _one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"sttr {prog}: ") and err.count("\n") == 1, err
    return err


def test_train_yaml_syntax_error_exits_2_in_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("optim:\n  lr: [0.1\n")
    assert train_cli.main(["--config", str(tmp_path / "c.yaml")]) == 2
    assert "c.yaml: not valid YAML at line 3, column 1: " in _one_line_error(capsys, "train")


def test_train_device_errors_are_one_line(tmp_path, monkeypatch, capsys):
    import torch

    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=2, T=8, M=1, subjects=2)
    base = ["--work-dir", str(tmp_path / "run"), "--set", "model.preset=nano", f"data.root={root}"]
    assert train_cli.main(base + ["device=gpu"]) == 2
    assert "'device': expected auto, cpu, cuda or cuda:N" in _one_line_error(capsys, "train")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_cli.main(base + ["device=cuda"]) == 2
    assert f"device 'cuda': torch sees no CUDA device (torch {torch.__version__} is" in _one_line_error(capsys, "train")


def test_eval_device_and_window_are_checked(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv, says in ((["--device", "gpu"], "device 'gpu': expected auto, cpu, cuda or cuda:N"),
                       (["--device", "cuda"], "device 'cuda': torch sees no CUDA device"),
                       (["--window", "-4"], "argument --window: expected a positive frame count, got '-4'"),
                       (["--window", "0"], "argument --window: expected a positive frame count, got '0'")):
        with pytest.raises(SystemExit) as stop:
            eval_cli.main(["x.pt", "--data", str(tmp_path)] + argv)
        assert stop.value.code == 2
        assert says in capsys.readouterr().err


def test_num_classes_below_the_dataset_labels_exits_2_naming_both(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=3, num_classes=3, T=8, M=1, subjects=2)
    assert train_cli.main(["--set", "model.preset=nano", f"data.root={root}", "model.num_classes=2",
                           "--work-dir", str(tmp_path / "run")]) == 2
    assert ("model.num_classes is 2 but " in (err := _one_line_error(capsys, "train"))
            and "train_label.pkl has labels up to 2 (3 classes)" in err)


def _cut(path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_a_truncated_data_file_or_broken_meta_is_named(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=3, T=8, M=1, subjects=2)
    _cut(root / "test_data.npy", 300)
    # sttr train finds it before training, not after, when it would test on it
    assert train_cli.main(["--set", "model.preset=nano", f"data.root={root}", "--work-dir", str(tmp_path / "r")]) == 2
    assert "test_data.npy: not a readable .npy array, truncated or corrupt (" in _one_line_error(capsys, "train")
    assert eval_cli.main(["x.pt", "--data", str(root)]) == 2
    assert "test_data.npy: not a readable .npy array" in _one_line_error(capsys, "eval")
    (root / "train_meta.json").write_text('{"layout": "natops8",}')
    assert eval_cli.main(["x.pt", "--data", str(root), "--split", "train"]) == 2
    assert "train_meta.json: not valid JSON (Expecting property name" in _one_line_error(capsys, "eval")


def test_a_truncated_checkpoint_is_named_by_eval_and_resume(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=2, T=8, M=1, subjects=2)
    work = tmp_path / "run"
    base = ["--set", "model.preset=nano", f"data.root={root}", "data.num_workers=0", "optim.epochs=1",
            "progress=false", "tensorboard=false", "test_at_end=false", "--work-dir", str(work)]
    assert train_cli.main(base) == 0
    _cut(work / "best.pt", 20000)  # cut inside the zip: torch's reader raises OSError (Errno 22)
    assert eval_cli.main([str(work / "best.pt"), "--data", str(root)]) == 2
    assert "best.pt: not a readable checkpoint, truncated or corrupt" in _one_line_error(capsys, "eval")
    _cut(work / "last.pt", 20000)
    assert train_cli.main(base + ["--resume"]) == 2
    assert "last.pt: not a readable training state, truncated or corrupt" in _one_line_error(capsys, "train")


def test_train_interrupted_exits_130_saying_how_to_resume(tmp_path, monkeypatch, capsys):
    from sttr.training.trainer import Trainer

    def interrupted(self, max_epochs=None):
        raise KeyboardInterrupt

    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=2, T=8, M=1, subjects=2)
    work = tmp_path / "run"
    argv = ["--set", "model.preset=nano", f"data.root={root}", "progress=false", "tensorboard=false",
            "--work-dir", str(work)]
    monkeypatch.setattr(Trainer, "fit", interrupted)
    assert train_cli.main(argv) == 130
    assert "sttr train: interrupted; no epoch had finished" in capsys.readouterr().err
    (work / "last.pt").write_bytes(b"")
    assert train_cli.main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert err.strip().endswith(f"in {work} with: sttr train --set model.preset=nano data.root={root} progress=false "
                                f"tensorboard=false --work-dir {work} --resume")


def test_resume_needs_only_the_work_dir(tmp_path, capsys):
    """`sttr train --resume --work-dir RUN` continues with the run's own settings (RUN/config.yaml): the first
    call's --set values need not be repeated, and a config given anew that changes them is refused."""
    root = make_dataset(tmp_path / "ds", layout="natops8", n_train=6, n_test=2, T=8, M=1, subjects=2)
    work = tmp_path / "run"
    first = ["--set", "model.preset=nano", f"data.root={root}", "data.num_workers=0", "optim.epochs=2",
             "data.batch_size=3", "progress=false", "tensorboard=false", "test_at_end=false", "threads=1",
             "--work-dir", str(work), "--max-epochs", "1"]
    assert train_cli.main(first) == 0
    capsys.readouterr()
    assert train_cli.main(["--resume", "--work-dir", str(work)]) == 0
    assert len((work / "log.csv").read_text().splitlines()) == 3  # header + two epochs
    assert train_cli.main(["--resume", "--work-dir", str(tmp_path / "elsewhere")]) == 2
    err = _one_line_error(capsys, "train")
    assert "nothing to resume in" in err and "no config.yaml and no last.pt" in err


def test_gendata_interrupted_exits_130_saying_to_rerun(tmp_path, monkeypatch, capsys):
    from sttr.training.cli import gendata as gendata_cli
    from sttr.training.datasets import __main__ as small

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gendata_cli, "_run_ntu", interrupted)
    monkeypatch.setattr(small, "main", interrupted)
    argv = ["ntu60", "--raw", "r", "--out", "o", "--benchmark", "xsub"]
    assert gendata_cli.main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err == ("sttr gendata: interrupted; to continue (finished samples and splits are kept), rerun the same "
                   "command: sttr gendata ntu60 --raw r --out o --benchmark xsub")
    assert gendata_cli.main(["natops", "--root", "r", "--out", "o"]) == 130
    assert "interrupted; to generate it again, rerun the same command" in capsys.readouterr().err


def test_gendata_kinetics_labels_given_a_folder_says_so(tmp_path, capsys):
    from sttr.training.cli import gendata as gendata_cli

    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "kinetics_val_label.json").write_text("{}")
    assert gendata_cli.main(["kinetics", "--raw", str(tmp_path), "--labels", str(tmp_path / "labels"),
                             "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sttr gendata: error: ")
    assert (f"{tmp_path / 'labels'} is a folder; expected the Kinetics label JSON file, e.g. kinetics_val_label.json "
            "(this folder holds kinetics_val_label.json)") in err
