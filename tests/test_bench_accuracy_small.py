"""benchmarks/accuracy_small.py: everything checkable is checked before training, one-line errors, the summary
table's difference to the published numbers, rows of several seeds named as such."""
from __future__ import annotations

import pytest

from .test_bench_common import load_bench


@pytest.fixture(scope="module")
def acc():
    return load_bench("accuracy_small")


@pytest.fixture
def data(tmp_path):
    for name in ("MSRAction3D", "Florence3D", "NATOPS"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def no_training(acc, monkeypatch):
    def train(*args, **kwargs):
        raise AssertionError("trained before the arguments were checked")
    monkeypatch.setattr(acc, "_train", train)
    monkeypatch.setattr(acc, "_generate", train)


@pytest.mark.parametrize("text", ["abc", "0-3", "1,11", "3-1"])
def test_bad_folds_are_refused(acc, text):
    with pytest.raises(Exception, match="expected|folds are"):
        acc.parse_folds(text)


def test_folds(acc):
    assert acc.parse_folds("1-3") == [1, 2, 3] and acc.parse_folds("2,5") == [2, 5]


@pytest.mark.parametrize("extra, message", [
    (["--only", "as9"], "--only: as9 not among the benchmarks of natops"),
    (["--set", "optim.epochs=abc"], "config key 'optim.epochs': expected an integer"),
    (["--set", "nonsense"], "override 'nonsense': expected key=value"),
    (["--streams", "s-tr:bad"], "--streams 's-tr:bad': expected PRESET[:KEY=VALUE...]"),
    (["--streams", "nope"], "unknown preset 'nope'"),
    (["--out", "{tmp}/no/r.json"], "--out: folder"),
])
def test_bad_settings_stop_before_training_in_one_line(acc, data, tmp_path, capsys, no_training, extra, message):
    argv = ["--data", str(data), "--datasets", "natops", *[a.replace("{tmp}", str(tmp_path)) for a in extra]]
    assert acc.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("accuracy_small.py: error: ") and message in err and err.count("\n") == 1


def test_a_data_folder_without_the_dataset_is_named(acc, tmp_path, capsys, no_training):
    assert acc.main(["--data", str(tmp_path), "--datasets", "florence3d"]) == 2
    assert "no Florence3D/ folder in it" in capsys.readouterr().err


def test_summary_gives_ours_minus_published_and_names_seed_means(acc):
    runs = [{"dataset": "natops", "group": "UEA", "benchmark": "uea", "preset": "s-tr", "seed": s, "top1": t,
             "num_test": 180} for s, t in ((1, 90.0), (2, 92.0))]
    runs.append({**runs[0], "preset": "s-tr x2 seeds", "seed": [1, 2], "top1": 95.0})
    rows = acc._summary(runs)
    assert [r["model"] for r in rows] == ["s-tr (mean of seeds 1, 2)", "s-tr x2 seeds"]
    assert rows[0]["ours_mean_top1"] == pytest.approx(91.0) and rows[0]["difference"] == pytest.approx(91.0 - 93.9)
    assert rows[1]["beats_published"] and rows[1]["difference"] == pytest.approx(1.1)
    table = acc.format_summary(rows)
    assert "ours - pub" in table and "-2.90" in table and "+1.10" in table
