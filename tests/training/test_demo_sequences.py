"""Held-out MSR Action3D recordings for the live demo."""
import numpy as np
import pytest

from sttr.training.datasets.demo_sequences import write_demo_sequences
from sttr.training.datasets.msr_action3d import read_sequence


@pytest.fixture
def msr_root(shared_data):
    root = shared_data / "small" / "MSRAction3D"
    if not root.is_dir():
        pytest.skip(f"MSR Action3D not found at {root}")
    return root


def test_recordings_hold_the_raw_sequence_and_its_label(msr_root, tmp_path):
    (path,) = write_demo_sequences(msr_root, tmp_path, ["a10_s02_e01"])
    with np.load(path) as rec:
        raw = read_sequence(msr_root / "real_world_coordinates" / "a10_s02_e01_skeleton3D.txt")
        np.testing.assert_array_equal(rec["joints"], raw)
        assert str(rec["label"]) == "hand clap" and str(rec["layout"]) == "kinect20" and float(rec["fps"]) == 15.0
        assert rec["scores"].shape == raw.shape[:3]


def test_training_subjects_are_refused(msr_root, tmp_path):
    with pytest.raises(ValueError, match="training subject"):
        write_demo_sequences(msr_root, tmp_path, ["a10_s03_e01"])
