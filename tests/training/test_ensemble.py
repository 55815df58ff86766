"""Fusion by sample name, weights, and errors on mismatched sample sets."""
import numpy as np
import pytest

from sttr.training.ensemble import ensemble_metrics, fuse_scores, labels_by_name


def test_fusion_pairs_by_name_not_position():
    a = {"s1": np.array([1.0, 0.0]), "s2": np.array([0.0, 1.0])}
    b = {"s2": np.array([0.0, 3.0]), "s1": np.array([2.0, 0.0])}  # other order
    fused = fuse_scores([a, b], [1.0, 0.5])
    np.testing.assert_allclose(fused["s1"], [2.0, 0.0])
    np.testing.assert_allclose(fused["s2"], [0.0, 2.5])


def test_weights_can_flip_the_decision_and_accuracy_uses_labels_by_name():
    a = {"x": np.array([2.0, 0.0, 0.0]), "y": np.array([0.0, 0.0, 1.0])}
    b = {"x": np.array([0.0, 3.0, 0.0]), "y": np.array([0.0, 0.0, 1.0])}
    labels = labels_by_name(["y", "x"], [2, 1])
    assert ensemble_metrics(fuse_scores([a, b], [1, 0.5]), labels)["top1"] == 0.5
    assert ensemble_metrics(fuse_scores([a, b], [1, 1]), labels)["top1"] == 1.0
    soft = fuse_scores([a, b], normalize="softmax")
    assert soft["x"].shape == (3,) and soft["x"].sum() == pytest.approx(2.0)


def test_mismatched_sample_sets_are_refused():
    with pytest.raises(ValueError, match=r"b\.pkl and a\.pkl hold different samples"):
        fuse_scores([{"s1": np.zeros(2)}, {"s2": np.zeros(2)}], sources=["a.pkl", "b.pkl"])
    with pytest.raises(ValueError, match="numbers of classes"):
        fuse_scores([{"s1": np.zeros(2)}, {"s1": np.zeros(3)}])
    with pytest.raises(ValueError, match="weights"):
        fuse_scores([{"s1": np.zeros(2)}], [1, 2])
    with pytest.raises(ValueError, match="without a label"):
        ensemble_metrics({"s1": np.zeros(2)}, {"s2": 0})


def test_non_positive_weights_and_non_finite_scores_are_refused():
    a, b = {"s1": np.array([1.0, 0.0])}, {"s1": np.array([np.nan, 0.0])}
    for weights in ([0, 0], [1, -1], [1, float("nan")]):  # a weight of 0 leaves a stream out: allowed
        with pytest.raises(ValueError, match="weights must be finite, >= 0 and not all 0"):
            fuse_scores([a, a], weights)
    with pytest.raises(ValueError, match=r"sample 's1': b.pkl holds non-finite scores \(NaN/inf\)"):
        fuse_scores([a, b], sources=["a.pkl", "b.pkl"])


def test_cli_fuses_two_files_by_name(tmp_path, capsys):
    import pickle

    from sttr.training.cli.ensemble import main
    from sttr.training.evaluate import save_scores

    save_scores(tmp_path / "s.pkl", ["a", "b"], np.array([[1.0, 0.0], [1.0, 0.0]]))
    save_scores(tmp_path / "t.pkl", ["b", "a"], np.array([[0.0, 3.0], [0.0, 0.5]]))
    with open(tmp_path / "label.pkl", "wb") as f:
        pickle.dump((["a", "b"], [0, 1]), f)
    args = [str(tmp_path / "s.pkl"), str(tmp_path / "t.pkl"), "--labels", str(tmp_path / "label.pkl")]
    assert main(args + ["--weights", "1", "1", "--json", "--out", str(tmp_path / "f.pkl")]) == 0
    assert '"top1": 1.0' in capsys.readouterr().out
    assert main(args + ["--weights", "1", "0", "--json"]) == 0
    assert '"top1": 0.5' in capsys.readouterr().out
    save_scores(tmp_path / "u.pkl", ["a"], np.array([[1.0, 0.0]]))
    assert main([str(tmp_path / "s.pkl"), str(tmp_path / "u.pkl"), "--labels", str(tmp_path / "label.pkl")]) == 2
    assert "different samples" in capsys.readouterr().err


def test_cli_names_a_folder_a_missing_file_or_a_non_pickle_it_was_given(tmp_path, capsys):
    import pickle

    from sttr.training.cli.ensemble import main
    from sttr.training.evaluate import save_scores

    save_scores(tmp_path / "s.pkl", ["a"], np.array([[1.0, 0.0]]))
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "test_label.pkl", "wb") as f:
        pickle.dump((["a"], [0]), f)
    (tmp_path / "text.pkl").write_text("garbage\n")
    cases = [([str(tmp_path / "s.pkl"), "--labels", str(data)], ["is a folder", "test_label.pkl"]),
             ([str(tmp_path / "s.pkl"), "--labels", str(tmp_path / "text.pkl")], ["text.pkl: not a label pickle"]),
             ([str(tmp_path / "text.pkl"), "--labels", str(data / "test_label.pkl")], ["not a score pickle"]),
             ([str(tmp_path / "none.pkl"), "--labels", str(data / "test_label.pkl")], ["none.pkl does not exist"]),
             ([str(data), "--labels", str(data / "test_label.pkl")], ["is a folder", "test_scores.pkl"])]
    for argv, says in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(s in err for s in says), err
    assert main([str(tmp_path / "s.pkl"), "--labels", str(data / "test_label.pkl")]) == 0
