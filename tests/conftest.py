"""Shared fixtures: where the real data lives, and a clear skip when it does not."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("STTR_SHARED_DATA")
    return Path(env) if env else _REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample data folder (`../shared/data` or `$STTR_SHARED_DATA`); skips when absent."""
    root = _shared_root()
    if not root.is_dir():
        pytest.skip(f"real sample data not found at {root} (set STTR_SHARED_DATA to the shared/data folder)")
    return root


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """The reference golden outputs folder (`../shared/reference`); skips when absent."""
    env = os.environ.get("STTR_SHARED_REFERENCE")
    root = Path(env) if env else _shared_root().parent / "reference"
    if not (root / "golden").is_dir():
        pytest.skip(f"reference golden outputs not found at {root}/golden (set STTR_SHARED_REFERENCE)")
    return root
