"""`open_source`: CLI kinds to source classes."""
from __future__ import annotations

import numpy as np
import pytest

from sttr.realtime.sources import SOURCE_KINDS, open_source
from sttr.realtime.sources.openpose_dir import OpenPoseDirSource
from sttr.realtime.sources.replay import ReplaySource, save_replay


def test_open_source_kinds(tmp_path):
    rec = save_replay(tmp_path / "r.npz", np.ones((2, 1, 25, 3)), None, 30.0, "ntu25")
    with open_source("replay", rec, realtime=False) as source:
        assert isinstance(source, ReplaySource) and len(list(source)) == 2
    with open_source("openpose", tmp_path, follow=False) as source:
        assert isinstance(source, OpenPoseDirSource) and list(source) == []
    with pytest.raises(ValueError, match="camera, video, url, openpose, zmq, replay"):
        open_source("webcam", 0)
    assert "zmq" in SOURCE_KINDS
