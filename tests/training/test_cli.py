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
