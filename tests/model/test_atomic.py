"""One atomic-write mechanism for every part: all or nothing, normal file mode."""
import os
import stat

import pytest

from sttr.model.atomic import atomic_open, atomic_write_bytes, default_file_mode


def test_replaces_whole_and_gets_the_umask_mode(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert stat.S_IMODE(os.stat(path).st_mode) == default_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]  # no temp file left


def test_an_error_while_writing_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as f:
            f.write("half")
            raise RuntimeError("writer failed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "x.bin", b"x")
