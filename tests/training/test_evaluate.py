"""Evaluation metrics on known logits, confusion matrix files and score files."""
import csv
import pickle

import numpy as np
import pytest

from sttr.training.evaluate import (accuracy_metrics, load_scores, save_confusion_csv, save_confusion_png,
                                    save_scores)

LOGITS = np.array([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0],   # true 0, top1 hit
                   [0.5, 0.4, 0.0, 0.0, 0.0, 0.0],   # true 1, top1 miss, top2 hit
                   [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],   # true 0, rank 6: top5 miss
                   [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])  # true 2, hit
LABELS = [0, 1, 0, 2]


def test_topk_per_class_and_confusion_on_known_logits():
    m = accuracy_metrics(LOGITS, LABELS)
    assert m["top1"] == pytest.approx(0.5) and m["top5"] == pytest.approx(0.75)
    assert m["per_class"][:3] == [0.5, 0.0, 1.0] and m["per_class"][3] is None  # class 3 has no sample
    expect = np.zeros((6, 6), dtype=int)
    expect[0, 0] = expect[1, 0] = expect[0, 5] = expect[2, 2] = 1
    np.testing.assert_array_equal(m["confusion"], expect)
    with pytest.raises(ValueError, match="labels must be in"):
        accuracy_metrics(LOGITS, [0, 1, 0, 6])


def test_class_zero_is_not_counted_as_the_last_class():  # spec §9 bug 18
    m = accuracy_metrics(np.eye(3), [0, 1, 2])
    assert m["per_class"] == [1.0, 1.0, 1.0]


def test_score_and_confusion_files(tmp_path):
    save_scores(tmp_path / "s.pkl", ["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.float32))
    with open(tmp_path / "s.pkl", "rb") as f:
        raw = pickle.load(f)
    assert list(raw) == ["a", "b"] and raw["b"].tolist() == [3.0, 4.0]
    assert load_scores(tmp_path / "s.pkl")["a"].tolist() == [1.0, 2.0]
    conf = np.array([[3, 1], [0, 2]])
    save_confusion_csv(tmp_path / "c.csv", conf, ["walk", "run"])
    rows = list(csv.reader(open(tmp_path / "c.csv")))
    assert rows == [["true\\predicted", "walk", "run"], ["walk", "3", "1"], ["run", "0", "2"]]
    save_confusion_png(tmp_path / "c.png", conf, ["walk", "run"])
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_data_of_other_classes_is_refused_and_other_normalisation_warned(caplog):
    from types import SimpleNamespace

    from sttr.training.evaluate import check_fit

    def split(names, **preprocess):
        return SimpleNamespace(meta=SimpleNamespace(label_names=names, preprocess=preprocess))

    model_labels = ["high arm wave", "hand catch", "draw x"]
    with pytest.raises(ValueError, match=r"d \(test\) has other classes than m.pt \(2 vs 3 classes; class 0 is "
                                         r"'high arm wave' in the model, 'horizontal arm wave' in the data\)"):
        check_fit(model_labels, {}, split(["horizontal arm wave", "hammer"]), "m.pt", "d (test)")
    with pytest.raises(ValueError, match=r"\(2 vs 3 classes\)"):  # a subset: same names, fewer classes
        check_fit(model_labels, {}, split(model_labels[:2]), "m.pt", "d (test)")
    made = {"pre_normalization": "fixed", "bones": "none", "channels": ["x", "y", "z"]}
    with caplog.at_level("WARNING"):
        check_fit(model_labels, made, split(model_labels, **made), "m.pt", "d (test)")
        assert not caplog.text
        check_fit(model_labels, made, split(model_labels, **{**made, "pre_normalization": "none"}), "m.pt", "d")
    assert "normalised otherwise than m.pt's training data (model vs data: pre_normalization 'fixed' vs 'none')" \
        in caplog.text
