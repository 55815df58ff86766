"""`sttr ensemble` fuses as the reference's ensemble.py (spec §5): S-TR logits + alpha * T-TR logits, raw logits, top-1
by argmax and top-5 as the label among the 5 largest, on score pickles written as main.py writes them."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest


def _reference_ensemble(label_path, score1_path, score2_path, alpha):
    """The reference's loop (pairing by position, as it does), re-typed from spec §5."""
    with open(label_path, "rb") as f:
        label = np.array(pickle.load(f), dtype=object)
    with open(score1_path, "rb") as f:
        r1 = list(pickle.load(f).items())
    with open(score2_path, "rb") as f:
        r2 = list(pickle.load(f).items())
    right = right5 = 0
    for i in range(len(label[0])):
        _, lab = label[:, i]
        r = r1[i][1] + r2[i][1] * alpha
        right5 += int(int(lab) in r.argsort()[-5:])
        right += int(np.argmax(r) == int(lab))
    return right / len(label[0]), right5 / len(label[0])


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_cli_top1_top5_equal_the_reference_formula(tmp_path, capsys, alpha):
    from sttr.training.cli.ensemble import main

    rng = np.random.default_rng(3)
    N, K = 200, 12
    names = [f"S001C001P{i:03d}R001A001.skeleton" for i in range(N)]
    labels = rng.integers(0, K, N)
    s_tr = rng.normal(size=(N, K)).astype(np.float32) + 1.5 * np.eye(K, dtype=np.float32)[labels]
    t_tr = rng.normal(size=(N, K)).astype(np.float32) + 1.5 * np.eye(K, dtype=np.float32)[labels]
    for path, logits in (("s.pkl", s_tr), ("t.pkl", t_tr)):  # main.py: dict(zip(sample_name, score)), row arrays
        with open(tmp_path / path, "wb") as f:
            pickle.dump(dict(zip(names, logits)), f)
    with open(tmp_path / "label.pkl", "wb") as f:  # the generators' (names, labels)
        pickle.dump((names, [int(y) for y in labels]), f)
    top1, top5 = _reference_ensemble(tmp_path / "label.pkl", tmp_path / "s.pkl", tmp_path / "t.pkl", alpha)
    assert 0.2 < top1 < 0.95 and top1 < top5 < 1.0  # informative: neither trivial nor saturated
    argv = [str(tmp_path / "s.pkl"), str(tmp_path / "t.pkl"), "--labels", str(tmp_path / "label.pkl"),
            "--weights", "1", str(alpha), "--json"]
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["num_samples"] == N
    assert got["top1"] == pytest.approx(top1, abs=1e-12) and got["top5"] == pytest.approx(top5, abs=1e-12)


def test_fused_scores_are_the_weighted_sum_of_raw_logits(tmp_path):
    from sttr.training.cli.ensemble import main
    from sttr.training.evaluate import load_scores, save_scores

    a, b = np.array([[2.0, -1.0, 0.5]]), np.array([[-3.0, 4.0, 1.0]])
    save_scores(tmp_path / "a.pkl", ["x"], a)
    save_scores(tmp_path / "b.pkl", ["x"], b)
    with open(tmp_path / "label.pkl", "wb") as f:
        pickle.dump((["x"], [0]), f)
    assert main([str(tmp_path / "a.pkl"), str(tmp_path / "b.pkl"), "--labels", str(tmp_path / "label.pkl"),
                 "--weights", "1", "0.5", "--out", str(tmp_path / "f.pkl"), "--json"]) == 0
    np.testing.assert_allclose(load_scores(tmp_path / "f.pkl")["x"], (a + 0.5 * b)[0], rtol=1e-6)
