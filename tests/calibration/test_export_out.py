"""`sttr export --out`: --overwrite replaces a bundle folder and nothing else (a run folder passed as --out kept its
best.pt only by luck before); a bundle folder given as the checkpoint is named as one."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from sttr.calibration.bundle_writer import ExportOptions, export_bundle  # noqa: E402
from sttr.calibration.cli.export import main as export_main  # noqa: E402
from sttr.model.bundle import read_bundle  # noqa: E402


def _run_folder(tmp_path, nano_checkpoint):
    run = tmp_path / "run"
    (run / "test").mkdir(parents=True)
    shutil.copyfile(nano_checkpoint, run / "best.pt")
    for name in ("last.pt", "log.csv", "config.yaml", "test/scores.npy"):
        (run / name).write_bytes(b"user data")
    return run


def _listing(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


def test_overwrite_refuses_a_folder_that_holds_the_checkpoint(nano_checkpoint, tmp_path, capsys):
    run = _run_folder(tmp_path, nano_checkpoint)
    before = _listing(run)
    assert export_main([str(run / "best.pt"), "--out", str(run), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a bundle folder" in err and "best.pt, the checkpoint being exported" in err
    assert _listing(run) == before


def test_overwrite_refuses_any_non_empty_folder_that_is_not_a_bundle(nano_checkpoint, tmp_path):
    run = _run_folder(tmp_path, nano_checkpoint)
    before = _listing(run)
    with pytest.raises(FileExistsError, match=r"run[/\\]test is not a bundle folder \(no bundle\.json; it holds "
                                              r"scores\.npy\)"):
        export_bundle(nano_checkpoint, run / "test", ExportOptions(exporter="legacy", overwrite=True))
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="is a file; expected a bundle folder"):
        export_bundle(nano_checkpoint, tmp_path / "afile", ExportOptions(exporter="legacy", overwrite=True))
    assert _listing(run) == before and (tmp_path / "afile").read_bytes() == b"x"


def test_overwrite_replaces_a_bundle_folder_and_fills_an_empty_one(bundle_dir, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    (bundle / "stale.engine").write_bytes(b"old engine")
    (bundle / "MODEL_CARD.md").write_text("what this model is")  # the user's own files survive --overwrite
    (bundle / "notes").mkdir()
    (bundle / "notes" / "a.txt").write_text("a")
    export_bundle(bundle / "model.pt", bundle, ExportOptions(exporter="legacy", overwrite=True, samples=2,
                                                             single_person=False))
    assert read_bundle(bundle).precisions == ["fp32"] and not (bundle / "stale.engine").exists()
    assert (bundle / "MODEL_CARD.md").read_text() == "what this model is" and (bundle / "notes" / "a.txt").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        export_bundle(bundle / "model.pt", empty, ExportOptions(exporter="legacy"))


def test_a_bundle_folder_given_as_the_checkpoint_is_named(bundle_dir, tmp_path, capsys):
    assert export_main([str(bundle_dir), "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a bundle folder, not a checkpoint file" in err and "sttr calibrate" in err
    assert str(bundle_dir / "model.pt") in err and "does not exist" not in err


def test_dynamic_time_help_does_not_say_s_tr_only(capsys):
    with pytest.raises(SystemExit):
        export_main(["--help"])
    assert "S-TR only" not in capsys.readouterr().out
