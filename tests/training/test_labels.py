"""Shipped class-name lists and label-name files in the formats of shared/data/labels."""
import pytest

from sttr.training.labels import BUILTIN_LABELS, NTU120_MISSING_LIST, load_label_names, read_label_names
from sttr.training.readers.missing import read_missing_list


def test_builtin_lists_match_their_sources(shared_data):
    sources = {"ntu60": "labels/mmaction2/label_map_ntu60.txt", "ntu120": "labels/pyskl/nturgbd_120.txt",
               "kinetics400": "labels/st-gcn/label_name.txt"}
    for name, source in sources.items():
        assert BUILTIN_LABELS[name].read_bytes() == (shared_data / source).read_bytes()
    ntu60, ntu120, k400 = (load_label_names(n) for n in ("ntu60", "ntu120", "kinetics400"))
    assert (len(ntu60), len(ntu120), len(k400)) == (60, 120, 400)
    assert ntu120[:60] == ntu60 and ntu60[0] == "drink water" and ntu60[57] == "handshaking"
    assert ntu120[108] == "grab other person\u2019s stuff"
    assert k400[0] == "abseiling"


def test_shipped_missing_list_is_the_official_one(shared_data):
    official = read_missing_list(shared_data / "ntu120/NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert read_missing_list(NTU120_MISSING_LIST) == official


def test_readme_format(shared_data, tmp_path):
    names = read_label_names(shared_data / "labels/shahroudy_NTURGB-D/README.md")
    assert len(names) == 120 and names[0] == "drink water"
    assert names[119] == "finger-guessing game (playing rock-paper-scissors)"
    bad = tmp_path / "bad.md"
    bad.write_text("* A1. one.\n* A3. three.\n")
    with pytest.raises(ValueError, match="A1., A2."):
        read_label_names(bad)
    with pytest.raises(FileNotFoundError, match="not a built-in list"):
        load_label_names(tmp_path / "absent.txt")
